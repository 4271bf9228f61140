package ldap

import "fmt"

// LDAP result codes mux tells apart (RFC 4511 section 4.1.9).
const (
	resultSuccess            = 0
	resultInvalidCredentials = 49
)

// Search scopes (RFC 4511 section 4.5.1.2).
const (
	ScopeBase = 0
	ScopeOne  = 1
	ScopeSub  = 2
)

// startTLSOID names the StartTLS extended operation (RFC 4511 section 4.14).
const startTLSOID = "1.3.6.1.4.1.1466.20037"

// envelope wraps a protocol operation in an LDAPMessage.
func envelope(id int32, op []byte) []byte {
	body := appendInt(nil, tagInteger, int64(id))
	body = append(body, op...)
	return appendTLV(nil, tagSequence, body)
}

// bindRequest is a version 3 simple bind (RFC 4511 section 4.2).
func bindRequest(id int32, dn, password string) []byte {
	b := appendInt(nil, tagInteger, 3)
	b = appendString(b, tagOctetString, dn)
	b = appendString(b, classContext|0, password) // simple [0]
	return envelope(id, appendTLV(nil, opBindRequest, b))
}

func unbindRequest(id int32) []byte {
	return envelope(id, []byte{opUnbindRequest, 0})
}

func startTLSRequest(id int32) []byte {
	return envelope(id, appendTLV(nil, opExtendedRequest, appendString(nil, classContext|0, startTLSOID)))
}

// searchRequest asks for the entries under base matching filter (already
// encoded), with attr as the only attribute. Aliases are not dereferenced and no limits are asked, as
// libldap's defaults that Postgres uses.
func searchRequest(id int32, base string, scope int, filter []byte, attr string) []byte {
	b := appendString(nil, tagOctetString, base)
	b = appendInt(b, tagEnumerated, int64(scope))
	b = appendInt(b, tagEnumerated, 0) // derefAliases: neverDerefAliases
	b = appendInt(b, tagInteger, 0)    // sizeLimit
	b = appendInt(b, tagInteger, 0)    // timeLimit
	b = appendBool(b, false)           // typesOnly
	b = append(b, filter...)
	b = appendTLV(b, tagSequence, appendString(nil, tagOctetString, attr))
	return envelope(id, appendTLV(nil, opSearchRequest, b))
}

// response is what mux reads of one LDAPMessage from the server.
type response struct {
	id     int64
	op     byte
	result result // BindResponse, SearchResultDone, ExtendedResponse
	dn     string // SearchResultEntry: the entry's name
}

// result is an LDAPResult.
type result struct {
	code      int64
	matchedDN string
	diag      string
}

func (r result) String() string {
	if r.diag != "" {
		return fmt.Sprintf("LDAP result %d (%s): %s", r.code, resultName(r.code), r.diag)
	}
	return fmt.Sprintf("LDAP result %d (%s)", r.code, resultName(r.code))
}

func resultName(code int64) string {
	switch code {
	case 0:
		return "success"
	case 1:
		return "operationsError"
	case 2:
		return "protocolError"
	case 7:
		return "authMethodNotSupported"
	case 8:
		return "strongerAuthRequired"
	case 32:
		return "noSuchObject"
	case 34:
		return "invalidDNSyntax"
	case 48:
		return "inappropriateAuthentication"
	case 49:
		return "invalidCredentials"
	case 50:
		return "insufficientAccessRights"
	case 51:
		return "busy"
	case 52:
		return "unavailable"
	case 53:
		return "unwillingToPerform"
	}
	return "other"
}

// parseMessage decodes one whole LDAPMessage (its outer SEQUENCE
// included). It reads only the operations mux expects; others come back
// with their tag and nothing else, for the caller to refuse.
func parseMessage(b []byte) (response, error) {
	var r response
	msg, rest, err := expect(b, tagSequence, "LDAPMessage")
	if err != nil {
		return r, err
	}
	if len(rest) != 0 {
		return r, fmt.Errorf("%w: %d bytes after the message", errMalformed, len(rest))
	}
	idEl, body, err := expect(msg.body, tagInteger, "messageID")
	if err != nil {
		return r, err
	}
	if r.id, err = parseInt(idEl.body); err != nil {
		return r, err
	}
	op, _, err := readElement(body) // controls, if any, are ignored
	if err != nil {
		return r, err
	}
	r.op = op.tag
	switch op.tag {
	case opBindResponse, opSearchResultDone, opExtendedResponse:
		r.result, err = parseResult(op.body)
	case opSearchResultEntry:
		var name element
		name, _, err = expect(op.body, tagOctetString, "objectName")
		r.dn = string(name.body)
	}
	return r, err
}

// parseResult decodes the LDAPResult components at the start of body.
func parseResult(body []byte) (result, error) {
	var r result
	code, rest, err := expect(body, tagEnumerated, "resultCode")
	if err != nil {
		return r, err
	}
	if r.code, err = parseInt(code.body); err != nil {
		return r, err
	}
	dn, rest, err := expect(rest, tagOctetString, "matchedDN")
	if err != nil {
		return r, err
	}
	diag, _, err := expect(rest, tagOctetString, "diagnosticMessage")
	if err != nil {
		return r, err
	}
	r.matchedDN, r.diag = string(dn.body), string(diag.body)
	return r, nil
}
