package wire

import (
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

func TestErrorRoundTrip(t *testing.T) {
	e := &Error{Severity: "FATAL", Code: CodeInvalidPassword, Message: "nope", Detail: "d", Hint: "h"}
	b := AppendError(nil, e)
	typ, l := Header(b)
	if typ != 'E' || l != len(b)-1 {
		t.Fatalf("header %c %d for %d bytes", typ, l, len(b))
	}
	var er pgproto3.ErrorResponse
	if err := er.Decode(b[5:]); err != nil {
		t.Fatal(err)
	}
	if got := FromResponse(&er); *got != *e {
		t.Fatalf("round trip %+v, want %+v", got, e)
	}
	sev, code := ErrorSeverityAndCode(b[5:])
	if string(sev) != "FATAL" || string(code) != CodeInvalidPassword || !IsFatalSeverity(sev) {
		t.Fatalf("severity %q code %q", sev, code)
	}
}

func TestBufPool(t *testing.T) {
	for _, n := range []int{1, SmallBufSize, SmallBufSize + 1, 1 << 20, 1<<20 + 1} {
		b := GetBuf(n)
		if len(*b) < n {
			t.Fatalf("GetBuf(%d) returned %d bytes", n, len(*b))
		}
		PutBuf(b)
	}
}

func TestSmallBufPool(t *testing.T) {
	for _, n := range []int{0, 1, 128, 129, 1000, MaxSmallBuf} {
		b := GetSmallBuf(n)
		if len(*b) < n || len(*b) != cap(*b) || len(*b) > max(2*n, minSmallBuf) {
			t.Fatalf("GetSmallBuf(%d) returned %d bytes (cap %d)", n, len(*b), cap(*b))
		}
		PutBuf(b)
	}
	// A small buffer never comes back from GetBuf, whose callers read
	// into what they get.
	for range 100 {
		PutBuf(GetSmallBuf(200))
		if b := GetBuf(1); len(*b) < SmallBufSize {
			t.Fatalf("GetBuf returned a %d-byte buffer", len(*b))
		}
	}
}

func FuzzErrorSeverityAndCode(f *testing.F) {
	f.Add(AppendError(nil, Fatal(CodeAdminShutdown, "bye"))[5:])
	f.Add([]byte("SERROR\x00"))
	f.Fuzz(func(t *testing.T, body []byte) {
		sev, code := ErrorSeverityAndCode(body)
		if len(sev) > len(body) || len(code) > len(body) {
			t.Fatal("fields longer than the body")
		}
	})
}
