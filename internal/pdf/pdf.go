// Package pdf writes small PDF 1.4 documents: pages with text in the
// standard Type 1 fonts (Helvetica, Helvetica-Bold, Courier; no embedding)
// and filled rectangles, which is enough for a letter with a QR code. It has
// no dependencies and no compression, so the text stays greppable.
//
// Coordinates are in points (1/72 inch) from the bottom-left corner of the
// page, as in PDF itself.
package pdf

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Font is one of the PDF standard fonts.
type Font string

// The fonts a page can use.
const (
	Helvetica     Font = "Helvetica"
	HelveticaBold Font = "Helvetica-Bold"
	Courier       Font = "Courier"
)

var fontNames = map[Font]string{Helvetica: "F1", HelveticaBold: "F2", Courier: "F3"}

// A4 page size in points.
const (
	A4Width  = 595.28
	A4Height = 841.89
)

// Document is a PDF under construction.
type Document struct {
	title string
	pages []*Page
}

// Page is one page: its size and its content stream.
type Page struct {
	width, height float64
	content       bytes.Buffer
}

// New returns an empty document.
func New() *Document { return &Document{} }

// SetTitle sets the document title shown by viewers.
func (d *Document) SetTitle(title string) { d.title = title }

// AddPage appends a page of the given size (points) and returns it.
func (d *Document) AddPage(width, height float64) *Page {
	p := &Page{width: width, height: height}
	d.pages = append(d.pages, p)
	return p
}

// Text writes s with its baseline starting at (x, y). Characters outside
// Windows-1252 are written as "?".
func (p *Page) Text(x, y float64, font Font, size float64, s string) {
	name, ok := fontNames[font]
	if !ok {
		name = fontNames[Helvetica]
	}
	fmt.Fprintf(&p.content, "BT /%s %s Tf %s %s Td (%s) Tj ET\n", name, num(size), num(x), num(y), escape(s))
}

// Rect fills the rectangle with its lower-left corner at (x, y) in black.
func (p *Page) Rect(x, y, w, h float64) {
	fmt.Fprintf(&p.content, "%s %s %s %s re f\n", num(x), num(y), num(w), num(h))
}

// Line strokes a line of the given width from (x1, y1) to (x2, y2).
func (p *Page) Line(x1, y1, x2, y2, width float64) {
	fmt.Fprintf(&p.content, "%s w %s %s m %s %s l S\n", num(width), num(x1), num(y1), num(x2), num(y2))
}

// CourierWidth is the advance of one Courier character, per point of font size.
const CourierWidth = 0.6

func num(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// cp1252 maps the characters of Windows-1252 above 0x7f that differ from
// Latin-1 to their bytes.
var cp1252 = map[rune]byte{
	'€': 0x80, '‚': 0x82, 'ƒ': 0x83, '„': 0x84, '…': 0x85, '†': 0x86, '‡': 0x87, 'ˆ': 0x88, '‰': 0x89,
	'Š': 0x8a, '‹': 0x8b, 'Œ': 0x8c, 'Ž': 0x8e, '‘': 0x91, '’': 0x92, '“': 0x93, '”': 0x94, '•': 0x95,
	'–': 0x96, '—': 0x97, '˜': 0x98, '™': 0x99, 'š': 0x9a, '›': 0x9b, 'œ': 0x9c, 'ž': 0x9e, 'Ÿ': 0x9f,
}

// escape encodes s as the inside of a PDF literal string in WinAnsiEncoding.
func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		var c byte
		switch {
		case r == '(' || r == ')' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
			continue
		case r >= 0x20 && r < 0x7f:
			b.WriteRune(r)
			continue
		case r >= 0xa0 && r <= 0xff:
			c = byte(r)
		default:
			var ok bool
			if c, ok = cp1252[r]; !ok {
				b.WriteByte('?')
				continue
			}
		}
		fmt.Fprintf(&b, "\\%03o", c)
	}
	return b.String()
}

// Bytes renders the document.
func (d *Document) Bytes() []byte {
	var out bytes.Buffer
	var offsets []int
	obj := func(body string) {
		offsets = append(offsets, out.Len())
		fmt.Fprintf(&out, "%d 0 obj\n%s\nendobj\n", len(offsets), body)
	}
	out.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	// Objects: 1 catalog, 2 pages, 3-5 fonts, 6 info, then per page: page, content.
	const first = 7
	kids := make([]string, len(d.pages))
	for i := range d.pages {
		kids[i] = fmt.Sprintf("%d 0 R", first+2*i)
	}
	obj("<< /Type /Catalog /Pages 2 0 R >>")
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(d.pages)))
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>")
	obj("<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>")
	obj(fmt.Sprintf("<< /Title (%s) /Producer (agentd) >>", escape(d.title)))
	for i, p := range d.pages {
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] /Resources << /Font << /F1 3 0 R /F2 4 0 R /F3 5 0 R >> >> /Contents %d 0 R >>",
			num(p.width), num(p.height), first+2*i+1))
		obj(fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", p.content.Len(), p.content.String()))
	}
	xref := out.Len()
	fmt.Fprintf(&out, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&out, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&out, "trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return out.Bytes()
}

// Wrap splits text into lines of at most width characters, at spaces where
// it can and inside words that are longer than a line.
func Wrap(text string, width int) []string {
	if width < 1 {
		width = 1
	}
	var lines []string
	for _, para := range strings.Split(text, "\n") {
		line := ""
		for _, w := range strings.Fields(para) {
			for len([]rune(w)) > width {
				if line != "" {
					lines = append(lines, line)
					line = ""
				}
				r := []rune(w)
				lines = append(lines, string(r[:width]))
				w = string(r[width:])
			}
			switch {
			case line == "":
				line = w
			case len([]rune(line))+1+len([]rune(w)) <= width:
				line += " " + w
			default:
				lines = append(lines, line)
				line = w
			}
		}
		lines = append(lines, line)
	}
	return lines
}
