package auth

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
)

// MD5Secret returns PostgreSQL's md5 secret for a user:
// "md5" + hex(md5(password + user)).
func MD5Secret(user, password string) string {
	sum := md5.Sum([]byte(password + user))
	return md5Prefix + hex.EncodeToString(sum[:])
}

// MD5Response returns what a client sends in reply to
// AuthenticationMD5Password with the given salt:
// "md5" + hex(md5(hex part of secret + salt)). secret must be an md5
// secret as returned by MD5Secret (a client holding a plain password
// computes that first); for anything else MD5Response returns "".
func MD5Response(secret string, salt [4]byte) string {
	if !isMD5Secret(secret) {
		return ""
	}
	buf := make([]byte, 0, 32+len(salt))
	buf = append(buf, secret[len(md5Prefix):]...)
	buf = append(buf, salt[:]...)
	sum := md5.Sum(buf)
	return md5Prefix + hex.EncodeToString(sum[:])
}

// CheckMD5 reports whether response is the correct reply to an md5
// challenge with salt for the md5 secret. The comparison is constant time
// (for responses of the expected length). It is false if secret is not an
// md5 secret.
func CheckMD5(secret string, salt [4]byte, response string) bool {
	want := MD5Response(secret, salt)
	if want == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(response)) == 1
}

// isMD5Secret mirrors PostgreSQL's test: "md5" then 32 lowercase hex digits.
func isMD5Secret(s string) bool {
	if len(s) != md5Len || s[:len(md5Prefix)] != md5Prefix {
		return false
	}
	for i := len(md5Prefix); i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
