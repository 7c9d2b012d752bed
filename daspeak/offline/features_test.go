package offline

import (
	"math"
	"math/cmplx"
	"math/rand/v2"
	"testing"
)

// TestPowerSpectrum compares the real-input FFT with a direct DFT.
func TestPowerSpectrum(t *testing.T) {
	for _, rate := range []int{8000, 16000} {
		fe := newFrontEnd(rate)
		n := fe.nfft
		r := rand.New(rand.NewPCG(3, 4))
		x := make([]float64, n)
		for i := range x {
			x[i] = r.NormFloat64()
		}
		pow := make([]float64, n/2+1)
		fe.power(x, make([]float64, n/2), make([]float64, n/2), pow)
		for k := range pow {
			var s complex128
			for i, v := range x {
				s += complex(v, 0) * cmplx.Exp(complex(0, -2*math.Pi*float64(k*i)/float64(n)))
			}
			want := real(s)*real(s) + imag(s)*imag(s)
			if math.Abs(pow[k]-want) > 1e-9*math.Max(1, want) {
				t.Fatalf("%d Hz: bin %d: %g, DFT %g", rate, k, pow[k], want)
			}
		}
	}
}
