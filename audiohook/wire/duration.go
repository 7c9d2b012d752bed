package wire

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Duration is an AudioHook duration, ISO 8601 restricted to seconds
// ("PT0S", "PT1.2S", "PT0.002072374S"). Its JSON form is that string; it
// never uses exponent notation and is never negative.
type Duration time.Duration

// parseDuration parses "PT<seconds>S" where seconds is digits with an
// optional decimal fraction (the reference regex ^PT(?:\d*\.)?\d+S$, also
// tolerating "PT5.S"). Fractions finer than a nanosecond are truncated.
func parseDuration(s string) (time.Duration, error) {
	if len(s) < 4 || s[0] != 'P' || s[1] != 'T' || s[len(s)-1] != 'S' {
		return 0, fmt.Errorf("%w: %.40q", ErrBadDuration, s)
	}
	body := s[2 : len(s)-1]
	var secs, frac int64
	fracDigits := 0
	digits := 0
	dot := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '.':
			if dot {
				return 0, fmt.Errorf("%w: %.40q", ErrBadDuration, s)
			}
			dot = true
		case c >= '0' && c <= '9':
			digits++
			d := int64(c - '0')
			if !dot {
				if secs > (math.MaxInt64/int64(time.Second)-d)/10 {
					return 0, fmt.Errorf("%w: %.40q out of range", ErrBadDuration, s)
				}
				secs = secs*10 + d
			} else if fracDigits < 9 {
				frac = frac*10 + d
				fracDigits++
			}
		default:
			return 0, fmt.Errorf("%w: %.40q", ErrBadDuration, s)
		}
	}
	if digits == 0 {
		return 0, fmt.Errorf("%w: %.40q", ErrBadDuration, s)
	}
	for ; fracDigits < 9; fracDigits++ {
		frac *= 10
	}
	if secs > (math.MaxInt64-frac)/int64(time.Second) {
		return 0, fmt.Errorf("%w: %.40q out of range", ErrBadDuration, s)
	}
	return time.Duration(secs)*time.Second + time.Duration(frac), nil
}

// formatDuration formats d as "PT<seconds>S" with up to nine decimals and no
// exponent. Negative values are formatted as PT0S.
func formatDuration(d time.Duration) string {
	var b [32]byte
	return string(appendDuration(b[:0], d))
}

// appendDuration appends the formatDuration form of d to dst.
func appendDuration(dst []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	dst = append(dst, 'P', 'T')
	dst = strconv.AppendInt(dst, int64(d/time.Second), 10)
	if ns := int64(d % time.Second); ns != 0 {
		var f [10]byte
		f[0] = '.'
		for i := 9; i >= 1; i-- {
			f[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for f[n-1] == '0' {
			n--
		}
		dst = append(dst, f[:n]...)
	}
	return append(dst, 'S')
}

// String returns the AudioHook form of d.
func (d Duration) String() string { return formatDuration(time.Duration(d)) }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) {
	return appendDuration(nil, time.Duration(d)), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
