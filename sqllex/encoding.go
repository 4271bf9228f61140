package sqllex

// Encoding is a client encoding, as far as it matters to the lexer.
//
// PostgreSQL's client-only encodings SJIS, BIG5, GBK, UHC and GB18030 have
// multibyte characters whose trail bytes can be ASCII (0x40-0x7E, including
// '\\'), so the lexer must step over whole characters in them. All other
// encodings PostgreSQL supports are ASCII-safe and behave like UTF-8 here.
type Encoding uint8

// Supported encodings.
const (
	EncodingUTF8    Encoding = iota // UTF-8 and every other ASCII-safe encoding
	EncodingSJIS                    // SJIS (Shift JIS, WIN932) and SHIFT_JIS_2004
	EncodingBIG5                    // BIG5 (WIN950)
	EncodingGBK                     // GBK (WIN936)
	EncodingUHC                     // UHC (WIN949)
	EncodingGB18030                 // GB18030
)

// EncodingByName maps a client_encoding name or alias to an Encoding. Like
// PostgreSQL it ignores case and non-alphanumeric characters ("Shift_JIS" is
// "SHIFTJIS"). Unknown names map to EncodingUTF8.
func EncodingByName(name string) Encoding {
	if name == "UTF8" { // the server's spelling, which clients follow
		return EncodingUTF8
	}
	var buf [24]byte
	n := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		default:
			continue
		}
		if n == len(buf) {
			return EncodingUTF8
		}
		buf[n] = c
		n++
	}
	switch string(buf[:n]) {
	case "sjis", "shiftjis", "mskanji", "win932", "windows932", "shiftjis2004":
		return EncodingSJIS
	case "big5", "win950", "windows950":
		return EncodingBIG5
	case "gbk", "win936", "windows936", "cp936":
		return EncodingGBK
	case "uhc", "win949", "windows949":
		return EncodingUHC
	case "gb18030":
		return EncodingGB18030
	}
	return EncodingUTF8
}

// charLen returns the length of the character starting at s[i], which must
// be a byte >= 0x80: 1 unless s[i] is a lead byte of enc followed by valid
// trail bytes. Invalid sequences count byte by byte (the server rejects them
// anyway when it converts the query to its own encoding).
func charLen(s []byte, i int, enc Encoding) int {
	if enc == EncodingUTF8 || i+1 >= len(s) {
		return 1
	}
	c, t := s[i], s[i+1]
	switch enc {
	case EncodingSJIS:
		if (0x81 <= c && c <= 0x9f || 0xe0 <= c && c <= 0xfc) &&
			(0x40 <= t && t <= 0x7e || 0x80 <= t && t <= 0xfc) {
			return 2
		}
	case EncodingBIG5:
		if 0x81 <= c && c <= 0xfe && (0x40 <= t && t <= 0x7e || 0xa1 <= t && t <= 0xfe) {
			return 2
		}
	case EncodingGBK:
		if 0x81 <= c && c <= 0xfe && (0x40 <= t && t <= 0x7e || 0x80 <= t && t <= 0xfe) {
			return 2
		}
	case EncodingUHC:
		if 0x81 <= c && c <= 0xfe &&
			(0x41 <= t && t <= 0x5a || 0x61 <= t && t <= 0x7a || 0x81 <= t && t <= 0xfe) {
			return 2
		}
	case EncodingGB18030:
		if c < 0x81 || c > 0xfe {
			return 1
		}
		if 0x40 <= t && t <= 0x7e || 0x80 <= t && t <= 0xfe {
			return 2
		}
		if '0' <= t && t <= '9' && i+3 < len(s) {
			if u, v := s[i+2], s[i+3]; 0x81 <= u && u <= 0xfe && '0' <= v && v <= '9' {
				return 4
			}
		}
	}
	return 1
}
