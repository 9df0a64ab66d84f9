package anoncreds

import (
	"math/big"
	"testing"
)

type bigIntAlias = big.Int

func mustDecimal(t testing.TB, s string) *big.Int {
	t.Helper()
	v, err := parseDecimal(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
