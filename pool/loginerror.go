package pool

import (
	"fmt"

	"github.com/muxpg/mux/internal/wire"
)

// newLoginError wraps an error Postgres sent while mux logged in as t. An
// authentication failure is passed on to the client, who did log in to
// mux: its message then says which server-side user failed and where mux
// took the password from, which the client cannot otherwise tell.
func newLoginError(t Target, e *wire.Error) *LoginError {
	switch e.Code {
	case wire.CodeInvalidPassword:
		from := t.PasswordFrom
		if from == "" {
			from = "its configuration"
		}
		e.Message += fmt.Sprintf(" (mux logged in to the server as user %q, password taken from %s)", t.User, from)
	case wire.CodeInvalidAuthorization:
		e.Message += fmt.Sprintf(" (mux logged in to the server as user %q)", t.User)
	}
	return &LoginError{e}
}
