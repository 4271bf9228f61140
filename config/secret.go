package config

import (
	"errors"
	"strings"

	"github.com/muxpg/mux/auth"
)

// ValidateSecret checks a configured password. Plain-text passwords
// (including "") are accepted unless they contain a NUL byte. Otherwise the
// password is classified by auth.ParseSecret, and its error, if any, is
// returned: "md5" followed by 32 lowercase hex digits is an md5 secret, a
// string starting with "SCRAM-SHA-256$" must be a well-formed SCRAM secret,
// and anything else is a plain-text password.
func ValidateSecret(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("password must not contain NUL bytes")
	}
	_, err := auth.ParseSecret(s)
	return err
}
