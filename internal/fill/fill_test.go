package fill

import (
	"reflect"
	"strings"
	"testing"
)

func TestStruct(t *testing.T) {
	var v struct {
		S    string
		U    uint64
		I    int64
		B    []byte
		L    []uint64
		Flag bool
	}
	if err := Struct(&v); err != nil {
		t.Fatal(err)
	}
	rv := reflect.ValueOf(v)
	for i := range rv.NumField() {
		if rv.Field(i).IsZero() {
			t.Errorf("field %s left zero", rv.Type().Field(i).Name)
		}
	}
	var bad struct {
		S string
		F float64
	}
	if err := Struct(&bad); err == nil || !strings.Contains(err.Error(), ".F is a float64") {
		t.Errorf("a float field: %v, want an error naming it", err)
	}
}
