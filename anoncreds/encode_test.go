package anoncreds

import (
	"math/big"
	"testing"
)

func TestEncodeValue(t *testing.T) {
	for raw, want := range map[string]string{
		"175":         "175",
		"0175":        "175",
		"+5":          "5",
		"-5":          "-5",
		"2147483647":  "2147483647",
		"-2147483648": "-2147483648",
		// Out of int32, or not an integer for Rust: hashed (values from Python hashlib).
		"2147483648": "26221484005389514539852548961319751347124425277437769688639924217837557266135",
		"Alex":       "99262857098057710338306967609588410025648622308394250666849665532448612202874",
		"":           "102987336249554097029535212322581322789799900648198034993379397001115665086549",
	} {
		if got := EncodeValue(raw); got != want {
			t.Errorf("EncodeValue(%q) = %s, want %s", raw, got, want)
		}
	}
	n := func(s string) *big.Int { v, _ := new(big.Int).SetString(s, 10); return v }
	for _, ok := range []struct{ raw, enc string }{{" 12 ", "12"}, {"1_000", "1000"}, {"0175", "175"}, {"Alex", EncodeValue("Alex")}, {" 12 ", EncodeValue(" 12 ")}} {
		if !encodedMatches(ok.raw, n(ok.enc)) {
			t.Errorf("%q / %s should match", ok.raw, ok.enc)
		}
	}
	for _, bad := range []struct{ raw, enc string }{{"Eve", EncodeValue("Alex")}, {"1__0", "10"}, {"_1", "1"}, {"12", "13"}, {"3000000000", "3000000000"}} {
		if encodedMatches(bad.raw, n(bad.enc)) {
			t.Errorf("%q / %s should not match", bad.raw, bad.enc)
		}
	}
}
