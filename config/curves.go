package config

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// curveNames maps OpenSSL's curve names (PgBouncer's client_tls_ecdhcurve
// takes them) and Go's to Go's curve ids.
var curveNames = map[string]tls.CurveID{
	"prime256v1": tls.CurveP256, "secp256r1": tls.CurveP256, "p-256": tls.CurveP256,
	"secp384r1": tls.CurveP384, "p-384": tls.CurveP384,
	"secp521r1": tls.CurveP521, "p-521": tls.CurveP521,
	"x25519": tls.X25519,
}

// ECDHCurves returns client_tls_ecdhcurve as the curves client TLS may use,
// in order of preference: nil for "auto" (Go's choice), else a ':' or ','
// separated list of curve names.
func ECDHCurves(s string) ([]tls.CurveID, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "auto" {
		return nil, nil
	}
	var ids []tls.CurveID
	for _, name := range strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		id, ok := curveNames[name]
		if !ok {
			return nil, fmt.Errorf("unknown curve %q (auto, prime256v1, secp384r1, secp521r1 or x25519)", name)
		}
		ids = append(ids, id)
	}
	return ids, nil
}
