package aeskw

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// RFC 5649, section 6, both examples.
func TestWrapPadVectors(t *testing.T) {
	kek := unhex("5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	for _, tc := range []struct{ key, wrapped string }{
		{"c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	} {
		got, err := WrapPad(kek, unhex(tc.key))
		if err != nil || hex.EncodeToString(got) != tc.wrapped {
			t.Fatalf("WrapPad = %x, %v; want %s", got, err, tc.wrapped)
		}
		back, err := UnwrapPad(kek, got)
		if err != nil || !bytes.Equal(back, unhex(tc.key)) {
			t.Fatalf("UnwrapPad = %x, %v", back, err)
		}
		got[len(got)-1] ^= 1
		if _, err := UnwrapPad(kek, got); err == nil {
			t.Fatal("tampered wrap accepted")
		}
	}
}

// RFC 4493, section 4, examples 1, 2 and 4.
func TestCMACVectors(t *testing.T) {
	key := unhex("2b7e151628aed2a6abf7158809cf4f3c")
	msg := unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	for _, tc := range []struct {
		n    int
		want string
	}{{0, "bb1d6929e95937287fa37d129b756746"}, {16, "070a16b46b4d4144f79bdd9dd04a287c"}, {64, "51f0bebf7e3b9d92fc49741779363cfe"}} {
		got, err := CMAC(key, msg[:tc.n])
		if err != nil || hex.EncodeToString(got) != tc.want {
			t.Fatalf("CMAC(%d bytes) = %x, %v; want %s", tc.n, got, err, tc.want)
		}
	}
}
