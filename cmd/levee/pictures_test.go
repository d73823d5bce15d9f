package main

import (
	"bytes"
	"cmp"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"

	"github.com/chromedp/chromedp"
)

// picturesEnv names the directory `make screenshots` regenerates the
// README's pictures in (docs/screenshots); unset, tests take none.
const picturesEnv = "LEVEE_SCREENSHOTS"

// maxPicture is the most a committed picture may weigh.
const maxPicture = 150 << 10

// picture saves what b shows (the viewport, not the whole page) as
// $LEVEE_SCREENSHOTS/name.png, at most maxPicture bytes.
func (b *browser) picture(name string) {
	b.t.Helper()
	dir := os.Getenv(picturesEnv)
	if dir == "" {
		return
	}
	shot, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("%s: picture %s: %v", b.name, name, err)
	}
	small, err := shrinkPNG(shot)
	if err != nil {
		b.t.Fatalf("%s: picture %s: %v", b.name, name, err)
	}
	if len(small) > maxPicture {
		b.t.Fatalf("%s: picture %s weighs %d bytes, more than %d", b.name, name, len(small), maxPicture)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), small, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("picture %s.png: %d bytes", name, len(small))
}

// shrinkPNG re-encodes a screenshot with at most 256 colours, the most
// frequent ones (a page is mostly flat colour; antialiased text takes the
// nearest), at the best compression.
func shrinkPNG(b []byte) ([]byte, error) {
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	counts := map[color.RGBA]int{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			counts[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 255}]++
		}
	}
	type freq struct {
		c color.RGBA
		n int
	}
	var fs []freq
	for c, n := range counts {
		fs = append(fs, freq{c, n})
	}
	slices.SortFunc(fs, func(a, b freq) int {
		if a.n != b.n {
			return cmp.Compare(b.n, a.n)
		}
		return cmp.Compare(uint32(a.c.R)<<16|uint32(a.c.G)<<8|uint32(a.c.B), uint32(b.c.R)<<16|uint32(b.c.G)<<8|uint32(b.c.B))
	})
	var pal color.Palette
	for _, f := range fs[:min(256, len(fs))] {
		pal = append(pal, f.c)
	}
	out := image.NewPaletted(bounds, pal)
	index := map[color.RGBA]uint8{}
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 255}
			i, ok := index[c]
			if !ok {
				i = uint8(pal.Index(c))
				index[c] = i
			}
			out.SetColorIndex(x, y, i)
		}
	}
	var buf bytes.Buffer
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(&buf, out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
