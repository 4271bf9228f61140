package admin

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/internal/wire"
)

// Column types of console results, as PgBouncer declares them.
var colTypes = map[string]struct {
	oid  uint32
	size int16
}{
	"text":    {25, -1},
	"int4":    {23, 4},
	"int8":    {20, 8},
	"numeric": {1700, -1},
	"bytea":   {17, -1},
}

// columns builds a RowDescription from "name:type name:type …".
func columns(spec string) []pgproto3.FieldDescription {
	var out []pgproto3.FieldDescription
	for _, f := range strings.Fields(spec) {
		name, typ, _ := strings.Cut(f, ":")
		t, ok := colTypes[typ]
		if !ok {
			panic("admin: bad column type in " + f)
		}
		out = append(out, pgproto3.FieldDescription{Name: []byte(name), DataTypeOID: t.oid, DataTypeSize: t.size, TypeModifier: -1})
	}
	return out
}

// resultSet accumulates one SHOW's reply.
type resultSet struct {
	cols []pgproto3.FieldDescription
	out  []byte
	vals [][]byte
}

func newResult(cols []pgproto3.FieldDescription) *resultSet {
	return &resultSet{cols: cols, out: wire.AppendMessage(nil, &pgproto3.RowDescription{Fields: cols})}
}

// row appends a DataRow. Values are strings, integers or nil (NULL);
// integers in int4 columns are clamped to int4's range.
func (r *resultSet) row(vals ...any) {
	if len(vals) != len(r.cols) {
		panic(fmt.Sprintf("admin: %d values for %d columns", len(vals), len(r.cols)))
	}
	r.vals = r.vals[:0]
	for i, v := range vals {
		var n int64
		switch v := v.(type) {
		case nil:
			r.vals = append(r.vals, nil)
			continue
		case string:
			r.vals = append(r.vals, []byte(v))
			continue
		case int:
			n = int64(v)
		case int64:
			n = v
		case uint32:
			n = int64(v)
		default:
			panic(fmt.Sprintf("admin: value of type %T", v))
		}
		if r.cols[i].DataTypeOID == 23 {
			n = max(min(n, math.MaxInt32), math.MinInt32)
		}
		r.vals = append(r.vals, strconv.AppendInt(nil, n, 10))
	}
	r.out = wire.AppendMessage(r.out, &pgproto3.DataRow{Values: r.vals})
}

func (r *resultSet) finish() []byte {
	return wire.AppendMessage(r.out, &pgproto3.CommandComplete{CommandTag: []byte("SHOW")})
}
