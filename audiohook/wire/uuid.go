package wire

// NullUUID is the all-zero UUID. A conversationId equal to it marks a
// connection probe.
const NullUUID = "00000000-0000-0000-0000-000000000000"

// IsUUID reports whether s is a UUID the reference peers accept: versions 1
// to 5 with the RFC 4122 variant, any case, or the null UUID.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	if s == NullUUID {
		return true
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
			continue
		case 14:
			if c < '1' || c > '5' {
				return false
			}
			continue
		case 19:
			switch c {
			case '8', '9', 'a', 'b', 'A', 'B':
				continue
			}
			return false
		}
		if !isHex(c) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
