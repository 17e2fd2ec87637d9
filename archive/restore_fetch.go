package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// coalesceGap is the largest run of unneeded bytes a restore from the
// vault downloads to join two ranges of a pack into one request. Reading a
// gap costs gap/bandwidth, a request more costs its round trip: the break
// even is round trip × bandwidth. BenchmarkRestoreFromVaultMinIO prints it
// for the link it runs on: against local MinIO a ranged GET took 1.8–2.9
// ms at 0.9–1.2 GB/s, about 2 MiB; a 100 Mbit/s link 20–30 ms away gives
// 250–375 KiB. Time is not the only price: a cloud vault bills egress per
// byte (about 50 times what a GET request costs for 256 KiB of it), so the
// gap stays at the low end of the real-link figure rather than the LAN's.
// Data blobs average about 1.1 MiB, so gaps this small only arise between
// small files' chunks, where one request instead of dozens matters most.
const coalesceGap = 256 << 10

// fetchers is how many packs a restore downloads ranges of at once.
const fetchers = 4

// fetchRange is one request: bytes [off, end) of a pack, holding the
// blobs es (sorted by offset) and, when header is set, the pack's key
// block at the start.
type fetchRange struct {
	off, end int64
	header   bool
	es       []packEntry
}

// coalesce sorts es by offset, drops duplicates and groups them into
// requests, joining neighbours less than gap apart. The pack's header
// (its key block) is always wanted: it joins the first range when that
// starts close enough, which it does when the pack's first blob is needed.
func coalesce(es []packEntry, gap int64) []fetchRange {
	slices.SortFunc(es, func(a, b packEntry) int { return int(int64(a.Offset) - int64(b.Offset)) })
	es = slices.CompactFunc(es, func(a, b packEntry) bool { return a.Offset == b.Offset })
	out := []fetchRange{{off: 0, end: int64(packHeaderLen), header: true}}
	for _, e := range es {
		start, end := int64(e.Offset), int64(e.Offset)+int64(e.Length)
		last := &out[len(out)-1]
		if start-last.end < gap {
			last.end = max(last.end, end)
			last.es = append(last.es, e)
			continue
		}
		out = append(out, fetchRange{off: start, end: end, es: []packEntry{e}})
	}
	return out
}

// stageChecked stages (when not staged yet) the bytes of es, one pack's
// blobs sorted by offset, as one range of sv, authenticating each blob as
// it arrives.
func (r *Reader) stageChecked(ctx context.Context, sv *StagedVault, pack ID, pk packKey, es []packEntry) error {
	fr := fetchRange{off: int64(es[0].Offset), es: es}
	for _, e := range es {
		fr.end = max(fr.end, int64(e.Offset)+int64(e.Length))
	}
	return r.stageRange(ctx, sv, pack, &pk, fr)
}

// stageRange stages one range of a pack, checking the key block (when the
// range holds it; pk is then filled in) and the AEAD of every blob in it
// while it downloads, so a damaged range is read from the other copy of a
// GRS vault. Decompression and the chunk ID are checked when a blob is
// read (LoadBlob).
func (r *Reader) stageRange(ctx context.Context, sv *StagedVault, pack ID, pk *packKey, fr fetchRange) error {
	name := PackName(pack)
	var buf, plain []byte
	return sv.StageRange(ctx, name, fr.off, fr.end-fr.off, func(rd io.Reader) error {
		pos := fr.off
		if fr.header {
			h := make([]byte, packHeaderLen)
			if _, err := io.ReadFull(rd, h); err != nil {
				return fmt.Errorf("read header: %w", err)
			}
			v, dk, err := packDataKey(r.k, h)
			if err != nil {
				return err
			}
			*pk = packKey{version: v, key: dk}
			pos = int64(packHeaderLen)
		}
		for _, e := range fr.es {
			if skip := int64(e.Offset) - pos; skip > 0 {
				if _, err := io.CopyN(io.Discard, rd, skip); err != nil {
					return fmt.Errorf("read: %w", err)
				}
			} else if skip < 0 {
				return fmt.Errorf("%s blob %s overlaps the blob before it", e.Type, e.ID)
			}
			if cap(buf) < int(e.Length) {
				buf = make([]byte, e.Length)
			}
			buf = buf[:e.Length]
			if _, err := io.ReadFull(rd, buf); err != nil {
				return fmt.Errorf("%s blob %s: %w: %w", e.Type, e.ID, ErrAuthentication, err)
			}
			var err error
			if plain, err = openAEADTo(plain[:0], pk.key[:], blobAD(pk.version, e.Type, e.ID), buf); err != nil {
				return fmt.Errorf("%s blob %s: %w", e.Type, e.ID, err)
			}
			pos = int64(e.Offset) + int64(e.Length)
		}
		return nil
	})
}

// planFetch coalesces the blobs each pack holds for a restore into
// requests, and returns them with the bytes they download.
func planFetch(want map[ID][]packEntry) (map[ID][]fetchRange, int64) {
	out := make(map[ID][]fetchRange, len(want))
	var total int64
	for p, es := range want {
		frs := coalesce(es, coalesceGap)
		for _, fr := range frs {
			total += fr.end - fr.off
		}
		out[p] = frs
	}
	return out, total
}

// fetchPacks downloads, before anything is written, the ranges of each
// pack holding the blobs in want (coalesced), authenticating every blob
// as it arrives, a few packs at a time. Packs that are missing or damaged
// (on every copy) are returned; any other error (an outage) is returned as
// err. tick is called about every 200 ms while it runs.
func fetchPacks(ctx context.Context, r *Reader, sv *StagedVault, want map[ID][]fetchRange, order []ID, tick func()) (map[ID]error, error) {
	return eachPack(ctx, order, fetchers, func(id ID) error { return r.fetchPack(ctx, sv, id, want[id]) }, tick)
}

// eachPack runs fn on every pack of packs, workers at a time, and sorts
// the outcomes: packs missing or damaged (unavailable) are returned by ID,
// the first other error (an outage) as err. tick, when set, is called
// about every 200 ms while it runs.
func eachPack(ctx context.Context, packs []ID, workers int, fn func(ID) error, tick func()) (map[ID]error, error) {
	type result struct {
		pack ID
		err  error
	}
	work := make(chan ID)
	results := make(chan result)
	var wg sync.WaitGroup
	for range min(workers, max(len(packs), 1)) {
		wg.Go(func() {
			for id := range work {
				results <- result{id, fn(id)}
			}
		})
	}
	go func() {
		defer close(work)
		for _, id := range packs {
			select {
			case work <- id:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	bad := map[ID]error{}
	var hard error
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if tick != nil {
				tick()
			}
		case res, ok := <-results:
			if !ok {
				if err := errors.Join(hard, ctx.Err()); err != nil {
					return nil, err
				}
				return bad, nil
			}
			switch {
			case res.err == nil:
			case unavailable(res.err):
				bad[res.pack] = res.err
			case hard == nil:
				hard = res.err
			}
		}
	}
}

// fetchPack stages the ranges of one pack that hold es: the one with the
// key block first, since the others need the key to be checked.
func (r *Reader) fetchPack(ctx context.Context, sv *StagedVault, pack ID, frs []fetchRange) error {
	var pk packKey
	for i, fr := range frs {
		if err := r.stageRange(ctx, sv, pack, &pk, fr); err != nil {
			return fmt.Errorf("%s: %w", PackName(pack), err)
		}
		if i > 0 {
			continue
		}
		if pk == (packKey{}) {
			// Staged before (not read here): take the key the usual way.
			var err error
			if pk, err = r.packKey(ctx, pack); err != nil {
				return err
			}
			continue
		}
		r.mu.Lock()
		r.packKeys[pack] = pk
		r.mu.Unlock()
	}
	return nil
}
