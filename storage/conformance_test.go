package storage_test

import (
	"testing"

	"github.com/tapeless/tapeless/storage"
	"github.com/tapeless/tapeless/storage/storagetest"
)

func TestConformance(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		storagetest.Run(t, func(t *testing.T) storage.Backend {
			b, err := storage.NewFile(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return b
		})
	})
	for _, which := range []string{"primary", "secondary"} {
		t.Run("s3-"+which, func(t *testing.T) {
			storagetest.Env(t, which)
			storagetest.Run(t, func(t *testing.T) storage.Backend {
				return openMinIO(t, which)
			})
		})
	}
}
