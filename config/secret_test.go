package config

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
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
		kind     SecretKind
		wantErr  string // "" means valid
	}{
		{"empty", "", SecretPlain, ""},
		{"plain", "hunter2", SecretPlain, ""},
		{"plain md5 prefix", "md5isgreat", SecretPlain, ""},
		{"plain scram-ish", "SCRAM-SHA-256", SecretPlain, ""},
		{"nul", "a\x00b", SecretPlain, "must not contain NUL"},
		{"md5", "md5" + strings.Repeat("0123456789abcdef", 2), SecretMD5, ""},
		{"md5 upper", "md5" + strings.Repeat("0123456789ABCDEF", 2), SecretMD5, "malformed md5 secret"},
		{"md5 non hex", "md5" + strings.Repeat("g", 32), SecretMD5, "malformed md5 secret"},
		{"scram", good, SecretSCRAM, ""},
		{"scram computed", scramSecret(t, "pw", []byte("salt"), 10), SecretSCRAM, ""},
		{"scram no keys", "SCRAM-SHA-256$4096:c2FsdA==", SecretSCRAM, "malformed scram secret"},
		{"scram no colon", "SCRAM-SHA-256$4096c2FsdA==$" + b(key) + ":" + b(key), SecretSCRAM, "malformed scram secret"},
		{"scram zero iter", formatSCRAM(0, []byte("s"), key, key), SecretSCRAM, "iteration count \"0\""},
		{"scram bad iter", "SCRAM-SHA-256$x:c2FsdA==$" + b(key) + ":" + b(key), SecretSCRAM, "iteration count"},
		{"scram huge iter", "SCRAM-SHA-256$99999999999:c2FsdA==$" + b(key) + ":" + b(key), SecretSCRAM, "iteration count"},
		{"scram empty salt", formatSCRAM(1, nil, key, key), SecretSCRAM, "salt"},
		{"scram bad salt", "SCRAM-SHA-256$1:!!$" + b(key) + ":" + b(key), SecretSCRAM, "salt"},
		{"scram short stored", formatSCRAM(1, []byte("s"), key[:31], key), SecretSCRAM, "StoredKey is 31 bytes, want 32"},
		{"scram bad server", formatSCRAM(1, []byte("s"), key, key) + "!", SecretSCRAM, "ServerKey is not valid base64"},
		{"scram long server", formatSCRAM(1, []byte("s"), key, append(key, 1)), SecretSCRAM, "ServerKey is 33 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ClassifySecret(tt.in); got != tt.kind {
				t.Errorf("ClassifySecret = %v, want %v", got, tt.kind)
			}
			err := ValidateSecret(tt.in)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("ValidateSecret = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("ValidateSecret = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseSCRAMSecret(t *testing.T) {
	s := scramSecret(t, "pw", []byte("NaCl"), 4096)
	sec, err := ParseSCRAMSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	if sec.Iterations != 4096 || string(sec.Salt) != "NaCl" || len(sec.StoredKey) != 32 || len(sec.ServerKey) != 32 {
		t.Fatalf("ParseSCRAMSecret = %+v", sec)
	}
	if got := formatSCRAM(sec.Iterations, sec.Salt, sec.StoredKey, sec.ServerKey); got != s {
		t.Fatalf("re-encoded %q, want %q", got, s)
	}
	if _, err := ParseSCRAMSecret("md5abc"); err == nil {
		t.Fatal("ParseSCRAMSecret accepted a non-SCRAM string")
	}
}

func TestSecretKindString(t *testing.T) {
	for k, want := range map[SecretKind]string{SecretPlain: "plain", SecretMD5: "md5", SecretSCRAM: "scram-sha-256"} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", k, k.String(), want)
		}
	}
}
