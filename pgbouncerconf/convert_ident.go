package pgbouncerconf

import (
	"strings"

	"github.com/muxpg/mux/hba"
)

// identFile carries auth_ident_file (PgBouncer 1.22+), which PgBouncer
// reads only with auth_type = hba, as mux reads it only with an
// auth_hba_file; hbaFile is the auth_hba_file carried over ("" when none).
// An import that reads the files the ini names (checkHBA set) checks it
// with mux's parser, as it does the rules.
func (c *converter) identFile(hbaFile string) {
	path, kv, ok := c.value("auth_ident_file", "")
	switch {
	case path == "":
	case hbaFile == "":
		c.note("auth_ident_file = %q (%s): not used, because auth_type is not hba", path, c.where(kv))
		path = ""
	case c.checkHBA != nil:
		if _, err := hba.LoadIdent(path); err != nil {
			msg := strings.ReplaceAll(err.Error(), "\n", "; ")
			c.note("auth_ident_file = %q (%s): mux cannot use these user name maps as they are, and will not start until they are fixed: %s", path, c.where(kv), msg)
		}
	}
	c.addString("auth_ident_file", path, c.origin(kv, ok && path != ""), kv)
}
