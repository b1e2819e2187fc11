package wire

import (
	"strings"
	"testing"
)

// TestCheckJSON compares the syntax check with json.Valid on the corners of RFC 8259.
func TestCheckJSON(t *testing.T) {
	for _, s := range []string{
		``, ` `, `{}`, ` {} `, `[]`, `[ ]`, `{ }`, `"x"`, `0`, `-0`, `01`, `-`, `1.`, `.5`, `1.5`, `1e5`, `1E+5`, `1e-5`, `1e`, `1e+`,
		`-1.25e-3`, `true`, `false`, `null`, `tru`, `nul`, `truex`, `True`, `[1,]`, `[,1]`, `[1 2]`, `{"a"}`, `{"a":}`, `{"a":1,}`,
		`{,"a":1}`, `{"a":1 "b":2}`, `{"a" : 1 , "b" : [ true , { } ] }`, `{1:2}`, `{"a":1}}`, `[[]]]`, `[{]}`, `{[}]`,
		`"\u00e9\ud83d\ude00\n\"\\\/\b\f\r\t"`, `"\x"`, `"\u12"`, `"\u12g4"`, `"a` + "\x01" + `"`, `"a` + "\x7f" + `"`,
		"\"\xff\"", "\"\xc3\xa9\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "[\"ok\",\"\xc3\"]", "\xff", "{\"a\":1}\xff",
		`{"a":[1,2,{"b":null}],"c":"d"}`, `{} {}`, `1 2`, "\t\n\r {}\r\n", strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat(`{"a":`, 50) + `1` + strings.Repeat(`}`, 50),
	} {
		checkSyntaxAgrees(t, []byte(s))
	}
}
