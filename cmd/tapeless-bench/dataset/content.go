package dataset

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Streams are made of blocks of blockSize, each generated on its own from
// (source, block number): any offset can be read without the bytes
// before it, and a segment of a stream is the same bytes in every file.
const blockSize = 64 << 10

// words is the vocabulary of the text-like files.
var words = strings.Fields(`
alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike
november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee
zulu request response session token cache miss hit upload download commit
rollback queue worker scheduler job retry timeout connect disconnect socket
buffer flush write read open close start stop ready pending done failed error
warning notice debug trace user admin guest order invoice payment refund cart
item price amount total customer account balance ledger entry report daily
weekly monthly backup restore archive vault store pack index chunk blob tree
point snapshot policy retention prune verify check repair server client proxy
gateway router switch node cluster region zone replica primary secondary leader
follower vote term epoch segment offset partition topic stream event message
payload header footer body field value key table row column schema query insert
update delete select join filter group sort limit page cursor batch record
metric counter gauge histogram sample label host disk memory cpu network latency
throughput bandwidth packet frame route path file folder volume mount device
kernel process thread signal pipe lock mutex channel context deadline cancel
`)

var levels = []string{"INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}

// blockGen generates blocks; it keeps the scratch it needs.
type blockGen struct {
	seed [32]byte
	line []byte
}

func (g *blockGen) rng(src Source, block int64) *rand.ChaCha8 {
	binary.LittleEndian.PutUint64(g.seed[0:], src.Key)
	binary.LittleEndian.PutUint64(g.seed[8:], uint64(block))
	binary.LittleEndian.PutUint64(g.seed[16:], uint64(src.Kind))
	binary.LittleEndian.PutUint64(g.seed[24:], 0x6461_7461_7365_7431)
	return rand.NewChaCha8(g.seed)
}

// fill writes block number block of src into dst (len blockSize).
func (g *blockGen) fill(dst []byte, src Source, block int64) {
	c := g.rng(src, block)
	if src.Kind == Random {
		// wyrand seeded from ChaCha8: several times faster than ChaCha8's
		// own stream and as incompressible to zstd.
		s := c.Uint64()
		for i := 0; i+8 <= len(dst); i += 8 {
			s += 0xa076_1d64_78bd_642f
			hi, lo := bits.Mul64(s, s^0xe703_7ed1_a0b4_28db)
			binary.LittleEndian.PutUint64(dst[i:], hi^lo)
		}
		return
	}
	// Times advance through the stream so logs read like logs.
	ts := epoch.Unix() - 7*86400 + block*600
	n := 0
	for n < len(dst) {
		v := c.Uint64()
		ts += int64(v & 1)
		g.line = textLine(g.line[:0], src.Kind, c, v>>1, ts)
		n += copy(dst[n:], g.line)
	}
}

// pick maps a byte to a word or a level: one random 64-bit draw gives
// several picks, which keeps generation fast.
func pick(table []string, b uint64) string { return table[(b&0xff)*uint64(len(table))>>8] }

func textLine(b []byte, k Kind, c *rand.ChaCha8, v uint64, ts int64) []byte {
	w := c.Uint64()
	switch k {
	case Log:
		b = appendTime(b, ts, int(v%1000))
		b = append(b, ' ')
		b = append(b, pick(levels, v>>10)...)
		b = append(b, ' ')
		b = append(b, pick(words, v>>18)...)
		b = append(b, '[')
		b = appendUint(b, 1000+(v>>26)%200)
		b = append(b, "]:"...)
		for i := range 4 + (v>>34)%8 {
			if i == 8 {
				w = c.Uint64()
			}
			b = append(b, ' ')
			b = append(b, pick(words, w>>(8*(i%8)))...)
		}
		if (v>>38)%3 == 0 {
			b = append(b, " id="...)
			b = strconv.AppendUint(b, c.Uint64()>>40, 16)
		}
	case CSV:
		b = appendUint(b, uint64(ts))
		b = append(b, ',')
		b = append(b, pick(words, w)...)
		b = append(b, ',')
		b = append(b, pick(words, w>>8)...)
		b = append(b, ',')
		b = appendUint(b, (w>>16)%100000)
		b = append(b, ',')
		b = appendUint(b, (w>>34)%10000)
		b = append(b, '.')
		b = appendUint(b, 10+(v%90))
		b = append(b, ',')
		b = append(b, pick(levels, w>>56)...)
	case JSONL:
		b = append(b, `{"ts":`...)
		b = appendUint(b, uint64(ts))
		b = append(b, `,"level":"`...)
		b = append(b, pick(levels, v)...)
		b = append(b, `","svc":"`...)
		b = append(b, pick(words, v>>8)...)
		b = append(b, `","msg":"`...)
		for i := range 3 + (v>>16)%6 {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, pick(words, w>>(8*i))...)
		}
		b = append(b, `","n":`...)
		b = appendUint(b, (v>>24)%10000)
		b = append(b, '}')
	}
	return append(b, '\n')
}

func appendUint(b []byte, v uint64) []byte {
	if v < 10 {
		return append(b, byte('0'+v))
	}
	return strconv.AppendUint(b, v, 10)
}

// appendTime appends ts as an RFC 3339 UTC time with milliseconds, without
// the cost of time.Format.
func appendTime(b []byte, ts int64, ms int) []byte {
	days, secs := ts/86400, ts%86400
	y, m, d := civil(days)
	b = pad(b, y, 4)
	b = append(b, '-')
	b = pad(b, m, 2)
	b = append(b, '-')
	b = pad(b, d, 2)
	b = append(b, 'T')
	b = pad(b, int(secs/3600), 2)
	b = append(b, ':')
	b = pad(b, int(secs/60%60), 2)
	b = append(b, ':')
	b = pad(b, int(secs%60), 2)
	b = append(b, '.')
	b = pad(b, ms, 3)
	return append(b, 'Z')
}

func pad(b []byte, v, width int) []byte {
	switch width {
	case 2:
		return append(b, byte('0'+v/10%10), byte('0'+v%10))
	case 3:
		return append(b, byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
	}
	return append(b, byte('0'+v/1000%10), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
}

// civil converts days since 1970-01-01 to a date (Howard Hinnant's
// algorithm).
func civil(z int64) (y, m, d int) {
	z += 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	yy := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	m = int(mp + 3)
	if m > 12 {
		m -= 12
	}
	if m <= 2 {
		yy++
	}
	return int(yy), m, d
}

// writer writes files' bytes; one per goroutine.
type writer struct {
	g     blockGen
	block []byte
	bw    *bufio.Writer
}

func newWriter() *writer {
	return &writer{block: make([]byte, blockSize), bw: bufio.NewWriterSize(nil, 256<<10)}
}

// writeFile writes f's bytes to w.
func (x *writer) writeFile(w io.Writer, f *File) error {
	x.bw.Reset(w)
	for _, s := range f.Segs {
		for off, end := s.Off, s.Off+s.Len; off < end; {
			b := off / blockSize
			x.g.fill(x.block, s.Src, b)
			lo := off - b*blockSize
			hi := min(int64(blockSize), end-b*blockSize)
			if _, err := x.bw.Write(x.block[lo:hi]); err != nil {
				return fmt.Errorf("write %s: %w", f.Path, err)
			}
			off += hi - lo
		}
	}
	if err := x.bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", f.Path, err)
	}
	return nil
}

// WriteContent writes f's bytes to w: what Write puts in its file.
func WriteContent(w io.Writer, f *File) error {
	return newWriter().writeFile(w, f)
}
