package config

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/muxpg/mux/auth"
)

func formatSCRAM(iter int, salt, stored, server []byte) string {
	b := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$" + strconv.Itoa(iter) + ":" + b(salt) + "$" + b(stored) + ":" + b(server)
}

func TestValidateSecret(t *testing.T) {
	key := make([]byte, 32)
	good := formatSCRAM(4096, []byte("0123456789abcdef"), key, key)
	b := base64.StdEncoding.EncodeToString
	tests := []struct {
		name, in string
		kind     auth.SecretKind // checked only if the secret is valid
		wantErr  string          // "" means valid
	}{
		{"empty", "", auth.SecretPlain, ""},
		{"plain", "hunter2", auth.SecretPlain, ""},
		{"plain md5 prefix", "md5isgreat", auth.SecretPlain, ""},
		{"plain scram-ish", "SCRAM-SHA-256", auth.SecretPlain, ""},
		{"nul", "a\x00b", 0, "must not contain NUL"},
		{"nul md5", "md5" + strings.Repeat("0", 31) + "\x00", 0, "must not contain NUL"},
		{"nul scram", good + "\x00", 0, "must not contain NUL"},
		{"md5", "md5" + strings.Repeat("0123456789abcdef", 2), auth.SecretMD5, ""},
		// Like PostgreSQL, only lowercase hex makes an md5 secret; anything
		// else of the same shape is a plain-text password.
		{"md5 upper is plain", "md5" + strings.Repeat("0123456789ABCDEF", 2), auth.SecretPlain, ""},
		{"md5 non hex is plain", "md5" + strings.Repeat("g", 32), auth.SecretPlain, ""},
		{"md5 long is plain", "md5" + strings.Repeat("a", 33), auth.SecretPlain, ""},
		{"scram", good, auth.SecretSCRAM, ""},
		{"scram computed", scramSecret(t, "pw", []byte("salt"), 10), auth.SecretSCRAM, ""},
		{"scram no keys", "SCRAM-SHA-256$4096:c2FsdA==", 0, "malformed SCRAM-SHA-256 secret"},
		{"scram no colon", "SCRAM-SHA-256$4096c2FsdA==$" + b(key) + ":" + b(key), 0, "malformed SCRAM-SHA-256 secret"},
		{"scram zero iter", formatSCRAM(0, []byte("s"), key, key), 0, "bad iteration count"},
		{"scram bad iter", "SCRAM-SHA-256$x:c2FsdA==$" + b(key) + ":" + b(key), 0, "bad iteration count"},
		{"scram huge iter", "SCRAM-SHA-256$99999999999:c2FsdA==$" + b(key) + ":" + b(key), 0, "bad iteration count"},
		{"scram empty salt", formatSCRAM(1, nil, key, key), 0, "bad salt"},
		{"scram bad salt", "SCRAM-SHA-256$1:!!$" + b(key) + ":" + b(key), 0, "bad salt"},
		{"scram short stored", formatSCRAM(1, []byte("s"), key[:31], key), 0, "bad StoredKey"},
		{"scram bad server", formatSCRAM(1, []byte("s"), key, key) + "!", 0, "bad ServerKey"},
		{"scram long server", formatSCRAM(1, []byte("s"), key, append(key, 1)), 0, "bad ServerKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateSecret(tt.in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ValidateSecret = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("ValidateSecret = %v, want error containing %q", err, tt.wantErr)
			case tt.wantErr != "":
				return
			}
			sec, err := auth.ParseSecret(tt.in)
			if err != nil || sec.Kind != tt.kind {
				t.Errorf("auth.ParseSecret = %v, %v; want kind %v", sec.Kind, err, tt.kind)
			}
		})
	}
}

// TestSCRAMSecretCrossCheck checks that the SCRAM secrets this package's
// tests compute independently (scramSecret) are read back by auth as
// config.Validate sees them.
func TestSCRAMSecretCrossCheck(t *testing.T) {
	s := scramSecret(t, "pw", []byte("NaCl"), 4096)
	sec, err := auth.ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	if sec.Kind != auth.SecretSCRAM || sec.SCRAM.Iterations != 4096 || string(sec.SCRAM.Salt) != "NaCl" {
		t.Fatalf("auth.ParseSecret = %+v", sec)
	}
	if got := formatSCRAM(sec.SCRAM.Iterations, sec.SCRAM.Salt, sec.SCRAM.StoredKey[:], sec.SCRAM.ServerKey[:]); got != s {
		t.Fatalf("re-encoded %q, want %q", got, s)
	}
	if want := auth.NewSCRAMSecret("pw", []byte("NaCl"), 4096).String(); s != want {
		t.Fatalf("scramSecret = %q, auth.NewSCRAMSecret = %q", s, want)
	}
}

// TestUserSecretKinds checks how auth_type and the kind of a user's
// password interact in a whole configuration.
func TestUserSecretKinds(t *testing.T) {
	md5 := "md5" + strings.Repeat("0123456789abcdef", 2)
	upper := "md5" + strings.Repeat("0123456789ABCDEF", 2)
	scram := scramSecret(t, "pw", []byte("salt"), 10)
	tests := []struct {
		name, authType, password, wantErr string
	}{
		{"md5 with md5", "md5", md5, ""},
		{"scram with md5", "md5", scram, ""},
		{"plain with scram", "scram-sha-256", "hunter2", ""},
		{"scram with scram", "scram-sha-256", scram, ""},
		{"md5 with scram", "scram-sha-256", md5, "users.bob.password: an md5 secret cannot be used with auth_type scram-sha-256"},
		// Not lowercase hex, so a plain password, usable with SCRAM.
		{"md5-like plain with scram", "scram-sha-256", upper, ""},
		{"bad scram with md5", "md5", scram[:len(scram)-4], "users.bob.password: malformed SCRAM-SHA-256 secret: bad ServerKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "auth_type = " + strconv.Quote(tt.authType) + "\n" + minimalDB +
				"[users.bob]\npassword = " + strconv.Quote(tt.password) + "\n"
			c, err := Parse([]byte(doc))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Parse:\n%s\nerror: %v", doc, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Parse:\n%s\nerror: %v; want error containing %q", doc, err, tt.wantErr)
			case err == nil && c.Users["bob"].Password != tt.password:
				t.Fatalf("password = %q, want %q", c.Users["bob"].Password, tt.password)
			}
		})
	}
}
