package archive

import (
	"encoding/binary"
	"fmt"
)

// Index object layout, see docs/FORMAT.md "Index object". One index object
// describes exactly one pack: the pack's ID and size in the clear (so a
// keyless verify can check that the pack exists with that size) and, sealed,
// the pack's entries (so a reader with the private key finds blobs without
// downloading whole packs).
const (
	indexOffPack   = prefixLen         // pack ID [32]
	indexOffSize   = indexOffPack + 32 // pack size u64
	indexOffBlock  = indexOffSize + 8  // key block
	indexOffSealed = indexOffBlock + keyBlockLen
)

// indexHeader is the clear part of an index object.
type indexHeader struct {
	Version  int
	Pack     ID
	PackSize int64
}

// sealIndex builds the index object of one pack.
func sealIndex(pub [32]byte, pack ID, packSize int64, es []packEntry) ([]byte, error) {
	dk, err := newDataKey()
	if err != nil {
		return nil, err
	}
	prefix := objectPrefix(kindIndex, CurrentFormat)
	b := make([]byte, 0, indexOffSealed+sealOverhead+4+len(es)*entryLen)
	b = append(b, prefix...)
	b = append(b, pack[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(packSize))
	block, err := wrapDataKey(pub, dk, prefix)
	if err != nil {
		return nil, fmt.Errorf("seal index: %w", err)
	}
	b = append(b, block...)
	b, err = sealAEADTo(b, dk[:], b[:indexOffSealed], encodeEntries(es))
	if err != nil {
		return nil, fmt.Errorf("seal index: %w", err)
	}
	return b, nil
}

// parseIndexHeader reads the clear part of an index object; no key needed.
func parseIndexHeader(b []byte) (indexHeader, error) {
	var h indexHeader
	v, err := checkPrefix(b, kindIndex)
	if err != nil {
		return h, err
	}
	if len(b) < indexOffSealed+sealOverhead {
		return h, fmt.Errorf("index object is truncated: %d bytes", len(b))
	}
	h.Version = v
	copy(h.Pack[:], b[indexOffPack:])
	h.PackSize = int64(binary.BigEndian.Uint64(b[indexOffSize:]))
	return h, nil
}

// openIndex authenticates and decodes an index object with the private key.
func openIndex(k *Keys, b []byte) (indexHeader, []packEntry, error) {
	h, err := parseIndexHeader(b)
	if err != nil {
		return h, nil, err
	}
	dk, err := unwrapDataKey(k, b[indexOffBlock:indexOffSealed], b[:prefixLen])
	if err != nil {
		return h, nil, err
	}
	plain, err := openAEAD(dk[:], b[:indexOffSealed], b[indexOffSealed:])
	if err != nil {
		return h, nil, err
	}
	es, err := decodeEntries(plain)
	if err != nil {
		return h, nil, err
	}
	for i, e := range es {
		if int64(e.Offset)+int64(e.Length) > h.PackSize {
			return h, nil, fmt.Errorf("entry %d (blob %s) lies beyond the pack's %d bytes", i, e.ID, h.PackSize)
		}
	}
	return h, es, nil
}
