package archive

import (
	"context"
	"testing"
	"time"
)

// TestEstimateRepack: right after offload every blob of every pack is
// live, so nothing is sparse; once prune expires the older points, the
// packs they shared with the kept point are partly dead, and the estimate
// counts exactly what is dead in the packs that are mostly so.
func TestEstimateRepack(t *testing.T) {
	ctx := context.Background()
	s, k := offloadStore(t)
	v, _ := fileVault(t)
	now := time.Now()
	backupSeries(t, s, 4, now)
	offloadAll(t, s, v, now, OffloadOptions{})

	est, err := EstimateRepack(ctx, v.Primary, k)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after offload: %+v", est)
	if est.Points != 4 || est.Packs == 0 || est.Sparse != 0 || est.Saving != 0 || est.Worth {
		t.Errorf("after offload: %+v; want 4 points and no sparse pack", est)
	}
	all := est.PackBytes

	if _, err := Prune(ctx, s, v.target(), PruneOptions{Select: expireAllBut(1), Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	est, err = EstimateRepack(ctx, v.Primary, k)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after prune: %+v", est)
	if est.Points != 1 || est.PackBytes >= all {
		t.Errorf("after prune: %+v; want 1 point on fewer pack bytes than %d", est, all)
	}
	if est.Sparse == 0 || est.Saving <= est.SparseSize/2 || est.Saving != est.SparseSize-est.LiveBytes {
		t.Errorf("after prune: %+v; want sparse packs, more than half of them dead", est)
	}
	if est.Worth != (est.Saving >= RepackMinSaving && est.Saving*10 >= est.PackBytes) {
		t.Errorf("worth %v does not follow from saving %d of %d", est.Worth, est.Saving, est.PackBytes)
	}
}
