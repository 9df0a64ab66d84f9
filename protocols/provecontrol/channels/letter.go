package channels

import (
	"fmt"
	"strings"

	"rsc.io/qr"

	"github.com/agentd/agentd/internal/pdf"
	"github.com/agentd/agentd/protocols/provecontrol"
)

// Letter renders the letter of an Address challenge: an A4 PDF with the
// postal address placed for a left window envelope (DIN 5008), a short
// explanation, the one-time link as text and as a QR code, the DIDs, the
// expiry and a reference.
type Letter struct{}

var _ provecontrol.LetterRenderer = Letter{}

// Layout of the page, in points.
const (
	marginLeft = 70.0 // 25 mm, the window's left edge
	textWidth  = 460.0
	bodySize   = 10.5
	monoSize   = 8.5
	qrModule   = 3.5
)

// RenderLetter renders l as a PDF.
func (Letter) RenderLetter(l provecontrol.LetterContent) ([]byte, error) {
	code, err := qr.Encode(l.Link, qr.M)
	if err != nil {
		return nil, fmt.Errorf("the link does not fit a QR code: %w", err)
	}
	doc := pdf.New()
	doc.SetTitle("Postal address verification " + l.Reference)
	p := doc.AddPage(pdf.A4Width, pdf.A4Height)
	y := pdf.A4Height - 60
	p.Text(marginLeft, y, pdf.HelveticaBold, 13, l.VerifierName)
	y -= 15
	p.Text(marginLeft, y, pdf.Helvetica, 9, "Prove Control verification service")

	// The address field of a DIN 5008 form B letter: 45 mm from the top.
	y = pdf.A4Height - 45/25.4*72 - 12
	p.Text(marginLeft, y+14, pdf.Helvetica, 7, "Personal - to be opened by the addressee only")
	for _, line := range strings.Split(l.Address, "\n") {
		p.Text(marginLeft, y, pdf.Helvetica, 11, line)
		y -= 14
	}

	y = pdf.A4Height - 105/25.4*72 - 20
	p.Text(marginLeft, y, pdf.HelveticaBold, 14, "Please confirm your postal address")
	y -= 22
	chars := 86 // Helvetica averages about half an em per character
	body := fmt.Sprintf("Someone asked %s to confirm that the holder of the digital identity (DID) below "+
		"receives mail at this address. If that was you, open the link below in your wallet, or scan the QR code "+
		"with it, before %s. The link works once. Your wallet then sends the proof, and you receive a credential "+
		"that states this address.\n\nIf you did not ask for this, ignore this letter: nothing happens without the link.",
		l.VerifierName, l.Expires.UTC().Format("2 January 2006, 15:04 MST"))
	for _, line := range pdf.Wrap(body, chars) {
		p.Text(marginLeft, y, pdf.Helvetica, bodySize, line)
		y -= bodySize * 1.4
	}

	// The QR code on the right, with its quiet zone of four modules left
	// white; the link and the DIDs as text on its left.
	y -= 8
	side := float64(code.Size) * qrModule
	x0 := marginLeft + textWidth - side
	top := y + 4
	for row := 0; row < code.Size; row++ {
		for col := 0; col < code.Size; {
			if !code.Black(col, row) {
				col++
				continue
			}
			run := col
			for run < code.Size && code.Black(run, row) {
				run++
			}
			p.Rect(x0+float64(col)*qrModule, top-float64(row+1)*qrModule, float64(run-col)*qrModule, qrModule)
			col = run
		}
	}
	left := textWidth - side - 8*qrModule
	p.Text(marginLeft, y, pdf.HelveticaBold, bodySize, "One-time link:")
	y -= 13
	for _, line := range pdf.Wrap(l.Link, int(left/(monoSize*pdf.CourierWidth))) {
		p.Text(marginLeft, y, pdf.Courier, monoSize, line)
		y -= monoSize * 1.3
	}
	y -= 6
	for _, item := range []struct{ label, value string }{
		{"Your DID:", l.User},
		{"Verifier DID:", l.Verifier},
	} {
		p.Text(marginLeft, y, pdf.HelveticaBold, 8.5, item.label)
		y -= 10
		for _, line := range pdf.Wrap(item.value, int(left/(6.5*pdf.CourierWidth))) {
			p.Text(marginLeft, y, pdf.Courier, 6.5, line)
			y -= 8
		}
		y -= 4
	}
	p.Line(marginLeft, 50, marginLeft+textWidth, 50, 0.5)
	p.Text(marginLeft, 38, pdf.Helvetica, 8, fmt.Sprintf("Reference %s - valid until %s", l.Reference, l.Expires.UTC().Format("2006-01-02 15:04 MST")))
	return doc.Bytes(), nil
}
