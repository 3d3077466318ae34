package bench

// The soak's plot: one line chart per figure over the run, drawn with the
// standard library's image packages and x/image's fixed-size font.

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"strconv"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// The plot: one panel per figure, in plotCols columns, under a title line.
const (
	plotCols   = 2
	panelW     = 560
	panelH     = 170
	plotHeader = 26
)

// plotPanel is one line chart: ys over xs (minutes); a NaN y breaks the line.
type plotPanel struct {
	title  string
	xs, ys []float64
	format func(float64) string
}

// plotSize is the size of the image of n panels.
func plotSize(n int) (w, h int) {
	rows := (n + plotCols - 1) / plotCols
	return plotCols * panelW, plotHeader + rows*panelH
}

func writeSoakPNG(path string, figures []soakFigure, samples []soakSample, o SoakOptions) error {
	var panels []plotPanel
	for _, f := range figures {
		p := plotPanel{title: f.name, format: f.format}
		for _, s := range samples {
			p.xs = append(p.xs, s.At.Minutes())
			p.ys = append(p.ys, f.get(s))
		}
		panels = append(panels, p)
	}
	title := fmt.Sprintf("floe bench soak: %d records/s, commit interval %s, partition_by %s, maintenance defaults; x: minutes",
		o.Rate, soakCommitEvery, soakPartitionBy)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := renderPlot(f, title, panels); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

var (
	plotInk   = color.RGBA{0x20, 0x20, 0x20, 0xff}
	plotAxis  = color.RGBA{0x90, 0x90, 0x90, 0xff}
	plotGrid  = color.RGBA{0xe4, 0xe4, 0xe4, 0xff}
	plotLine  = color.RGBA{0x1f, 0x5f, 0xbf, 0xff}
	plotLabel = color.RGBA{0x50, 0x50, 0x50, 0xff}
)

// renderPlot draws the panels as a PNG.
func renderPlot(w io.Writer, title string, panels []plotPanel) error {
	iw, ih := plotSize(len(panels))
	img := image.NewRGBA(image.Rect(0, 0, iw, ih))
	draw.Draw(img, img.Bounds(), image.White, image.Point{}, draw.Src)
	drawText(img, 8, 17, title, plotInk)
	for i, p := range panels {
		x0, y0 := (i%plotCols)*panelW, plotHeader+(i/plotCols)*panelH
		drawPanel(img, image.Rect(x0, y0, x0+panelW, y0+panelH), p)
	}
	return png.Encode(w, img)
}

func drawPanel(img *image.RGBA, r image.Rectangle, p plotPanel) {
	const left, right, top, bottom = 70, 14, 22, 20
	area := image.Rect(r.Min.X+left, r.Min.Y+top, r.Max.X-right, r.Max.Y-bottom)
	format := p.format
	if format == nil {
		format = fmtCount
	}
	title := p.title
	for i := len(p.ys) - 1; i >= 0; i-- {
		if !math.IsNaN(p.ys[i]) && !math.IsInf(p.ys[i], 0) {
			title += "   last: " + format(p.ys[i])
			break
		}
	}
	drawText(img, r.Min.X+left, r.Min.Y+15, title, plotInk)

	xmin, xmax := 0.0, math.Inf(-1)
	ymin, ymax := math.Inf(1), math.Inf(-1)
	for i, y := range p.ys {
		xmax = max(xmax, p.xs[i])
		if math.IsNaN(y) || math.IsInf(y, 0) {
			continue
		}
		ymin, ymax = min(ymin, y), max(ymax, y)
	}
	if math.IsInf(xmax, -1) || xmax <= xmin {
		xmax = xmin + 1
	}
	if math.IsInf(ymin, 1) {
		ymin, ymax = 0, 1
	}
	// Non-negative figures are drawn from zero, so a flat line looks flat.
	ymin = min(ymin, 0)
	if ymax <= ymin {
		ymax = ymin + 1
	}

	for _, f := range []float64{0.25, 0.5, 0.75} {
		y := area.Max.Y - int(f*float64(area.Dy()))
		hline(img, area.Min.X, area.Max.X, y, plotGrid)
	}
	hline(img, area.Min.X, area.Max.X, area.Max.Y, plotAxis)
	hline(img, area.Min.X, area.Max.X, area.Min.Y, plotAxis)
	vline(img, area.Min.X, area.Min.Y, area.Max.Y, plotAxis)
	vline(img, area.Max.X, area.Min.Y, area.Max.Y, plotAxis)

	label := func(v float64) string {
		if v == 0 {
			return "0"
		}
		return format(v)
	}
	drawTextRight(img, area.Min.X-4, area.Min.Y+9, label(ymax), plotLabel)
	drawTextRight(img, area.Min.X-4, area.Max.Y, label(ymin), plotLabel)
	drawText(img, area.Min.X, area.Max.Y+14, strconv.FormatFloat(xmin, 'f', 0, 64), plotLabel)
	drawTextRight(img, area.Max.X, area.Max.Y+14, strconv.FormatFloat(xmax, 'f', 1, 64)+" min", plotLabel)

	px := func(x float64) int {
		return area.Min.X + int(math.Round((x-xmin)/(xmax-xmin)*float64(area.Dx())))
	}
	py := func(y float64) int {
		return area.Max.Y - int(math.Round((y-ymin)/(ymax-ymin)*float64(area.Dy())))
	}
	havePrev := false
	var lx, ly int
	for i, y := range p.ys {
		if math.IsNaN(y) || math.IsInf(y, 0) {
			havePrev = false
			continue
		}
		x, yy := px(p.xs[i]), py(y)
		if havePrev {
			line(img, lx, ly, x, yy, plotLine)
		}
		if len(p.ys) <= 120 {
			dot(img, x, yy, plotLine)
		}
		lx, ly, havePrev = x, yy, true
	}
}

func hline(img *image.RGBA, x0, x1, y int, c color.Color) {
	for x := x0; x <= x1; x++ {
		img.Set(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.Color) {
	for y := y0; y <= y1; y++ {
		img.Set(x, y, c)
	}
}

// line draws a two-pixel-wide line (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.Set(x0, y0, c)
		img.Set(x0, y0+1, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func dot(img *image.RGBA, x, y int, c color.Color) {
	for i := -1; i <= 1; i++ {
		for j := -1; j <= 1; j++ {
			img.Set(x+i, y+j, c)
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func drawText(img draw.Image, x, y int, s string, c color.Color) {
	d := &font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

// drawTextRight draws s ending at x.
func drawTextRight(img draw.Image, x, y int, s string, c color.Color) {
	d := &font.Drawer{Face: basicfont.Face7x13}
	drawText(img, x-d.MeasureString(s).Round(), y, s, c)
}
