package pgbouncerconf

import (
	"path/filepath"
	"testing"
)

// auth_ident_file is carried with auth_type = hba, dropped with a note
// otherwise (PgBouncer does not read it then either), and checked by
// Import with mux's parser.
func TestConvertIdentFile(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "hba.conf")
	writeFile(t, rules, "local all all peer map=m\n")
	maps := filepath.Join(dir, "ident.conf")
	writeFile(t, maps, "m postgres app\n")

	res, c := convertText(t, base+"auth_type = hba\nauth_hba_file = "+rules+"\nauth_ident_file = "+maps+"\n", nil)
	if c.AuthIdentFile != maps || len(res.Notes) != 1 { // only: no users
		t.Errorf("auth_ident_file %q, notes %q", c.AuthIdentFile, res.Notes)
	}
	res, c = convertText(t, base+"auth_ident_file = "+maps+"\n", nil)
	if c.AuthIdentFile != "" || !noteWith(res.Notes, "auth_ident_file = \""+maps+"\" (pgbouncer.ini:5): not used, because auth_type is not hba") {
		t.Errorf("auth_ident_file %q, notes %q", c.AuthIdentFile, res.Notes)
	}

	ini := filepath.Join(dir, "p.ini")
	writeFile(t, maps, "m postgres +admins\n")
	writeFile(t, ini, base+"auth_type = hba\nauth_hba_file = "+rules+"\nauth_ident_file = "+maps+"\n")
	res, err := Import(ini, "")
	if err != nil {
		t.Fatal(err)
	}
	if !noteWith(res.Notes, "mux cannot use these user name maps as they are") || !noteWith(res.Notes, "ident.conf:1: group membership") {
		t.Errorf("notes %q", res.Notes)
	}
}
