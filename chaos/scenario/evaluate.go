package scenario

import (
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// Outcome is one expectation checked against a report.
type Outcome struct {
	Key  string `json:"key"`
	Want any    `json:"want"`
	Got  any    `json:"got"`
	OK   bool   `json:"ok"`
}

// Evaluate checks each expectation against report, a JSON-like map (as
// decoded by encoding/json, or built with Go numbers, bools and strings),
// in which a dotted key such as "availability.during_faults" names a
// nested value. A key the report lacks, or holds as null, fails with Got
// nil; a comparison fails unless the value is a number. Evaluate never
// panics, whatever the report holds.
func Evaluate(exps []Expectation, report map[string]any) []Outcome {
	out := make([]Outcome, 0, len(exps))
	for _, e := range exps {
		got, found := lookup(report, e.Key)
		o := Outcome{Key: e.Key, Want: e.Want, Got: got}
		if found && got != nil {
			o.OK = holds(e.Want, got)
		}
		out = append(out, o)
	}
	return out
}

// lookup finds key in report: as a whole key first, then by walking its
// dotted parts through nested maps (the longest matching part first, so
// that "availability.by_side.g1,n1" finds the side "g1,n1").
func lookup(report any, key string) (any, bool) {
	if v, ok := index(report, key); ok {
		return v, true
	}
	for i := len(key) - 1; i > 0; i-- {
		if key[i] != '.' {
			continue
		}
		if v, ok := index(report, key[:i]); ok {
			if got, ok := lookup(v, key[i+1:]); ok {
				return got, true
			}
		}
	}
	return nil, false
}

// index returns m[key] when m is a map with string keys (of any value
// type) holding key, with pointers followed.
func index(m any, key string) (any, bool) {
	rv := deref(reflect.ValueOf(m))
	if !rv.IsValid() || rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, false
	}
	v := rv.MapIndex(reflect.ValueOf(key).Convert(rv.Type().Key()))
	if !v.IsValid() {
		return nil, false
	}
	v = deref(v)
	if !v.IsValid() || ((v.Kind() == reflect.Map || v.Kind() == reflect.Slice) && v.IsNil()) {
		return nil, true
	}
	return v.Interface(), true
}

// deref follows pointers and interfaces; a nil one gives the zero Value.
func deref(v reflect.Value) reflect.Value {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return reflect.Value{}
		}
		v = v.Elem()
	}
	return v
}

// holds says whether got satisfies want.
func holds(want, got any) bool {
	switch w := want.(type) {
	case string:
		if op, n, isCmp, err := parseComparison(w); isCmp {
			g, ok := toFloat(got)
			return err == nil && ok && compare(op, g, n)
		}
		if g, ok := got.(string); ok {
			return g == w
		}
		return false
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	}
	if wn, ok := toFloat(want); ok {
		g, ok := toFloat(got)
		return ok && g == wn
	}
	return false
}

func compare(op string, got, want float64) bool {
	switch op {
	case "==":
		return got == want
	case "!=":
		return got != want
	case ">=":
		return got >= want
	case "<=":
		return got <= want
	case ">":
		return got > want
	case "<":
		return got < want
	}
	return false
}

// toFloat reads any Go number (and json.Number) as a float64; NaN is not
// a number here, so that it satisfies no expectation.
func toFloat(v any) (float64, bool) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		x, err := strconv.ParseFloat(strings.TrimSpace(n.String()), 64)
		if err != nil {
			return 0, false
		}
		f = x
	case bool, string, nil:
		return 0, false
	default:
		rv := reflect.ValueOf(v)
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			f = float64(rv.Int())
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			f = float64(rv.Uint())
		case reflect.Float32, reflect.Float64:
			f = rv.Float()
		default:
			return 0, false
		}
	}
	return f, !math.IsNaN(f)
}
