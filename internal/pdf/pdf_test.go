package pdf

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The cross-reference table points at each object, as readers require.
func TestStructure(t *testing.T) {
	d := New()
	d.SetTitle("T (1)")
	p := d.AddPage(A4Width, A4Height)
	p.Text(10, 20, Helvetica, 12, `a (b) \c`)
	p.Text(10, 40, Courier, 9, "Müller € ✓")
	p.Rect(1, 2, 3, 4)
	d.AddPage(100, 100).Text(1, 1, HelveticaBold, 5, "second")
	out := d.Bytes()
	if !bytes.HasPrefix(out, []byte("%PDF-1.4\n")) || !bytes.HasSuffix(out, []byte("%%EOF\n")) {
		t.Fatal("header or trailer missing")
	}
	m := regexp.MustCompile(`startxref\n(\d+)\n`).FindSubmatch(out)
	if m == nil {
		t.Fatal("no startxref")
	}
	xref, _ := strconv.Atoi(string(m[1]))
	if !bytes.HasPrefix(out[xref:], []byte("xref\n0 ")) {
		t.Fatal("startxref does not point at the xref table")
	}
	entries := regexp.MustCompile(`(\d{10}) 00000 n `).FindAllSubmatch(out[xref:], -1)
	if len(entries) != 10 { // catalog, pages, 3 fonts, info, 2 pages x (page, content)
		t.Fatalf("%d xref entries", len(entries))
	}
	for i, e := range entries {
		off, _ := strconv.Atoi(string(e[1]))
		if want := strconv.Itoa(i+1) + " 0 obj\n"; !bytes.HasPrefix(out[off:], []byte(want)) {
			t.Errorf("entry %d points at %q", i+1, out[off:off+10])
		}
	}
	for _, want := range []string{`(a \(b\) \\c) Tj`, `(M\374ller \200 ?) Tj`, "1 2 3 4 re f", "/Count 2", `/Title (T \(1\))`} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("missing %q", want)
		}
	}
	// Stream lengths are exact.
	for _, sm := range regexp.MustCompile(`(?s)<< /Length (\d+) >>\nstream\n(.*?)endstream`).FindAllSubmatch(out, -1) {
		if n, _ := strconv.Atoi(string(sm[1])); n != len(sm[2]) {
			t.Errorf("stream length %d, actual %d", n, len(sm[2]))
		}
	}
}

func TestWrap(t *testing.T) {
	got := Wrap("the quick brown fox jumps\n\nover abcdefghijkl", 10)
	want := []string{"the quick", "brown fox", "jumps", "", "over", "abcdefghij", "kl"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("%q", got)
	}
}
