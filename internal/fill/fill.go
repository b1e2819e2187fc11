// Package fill sets every field of a struct to a non-zero value, for tests
// that check a codec keeps every field: a field added to a struct but not
// to its codec then fails the round trip.
package fill

import (
	"fmt"
	"reflect"
)

// Struct fills the exported fields of the struct p points to: strings,
// integers, byte slices, uint64 slices and bools. It returns an error
// naming the first field of another kind, so that the test (and the codec)
// is taught about it.
func Struct(p any) error {
	v := reflect.ValueOf(p).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + "-é")
		case reflect.Uint64:
			f.SetUint(uint64(1)<<63 + uint64(i))
		case reflect.Int64:
			f.SetInt(-1 << 62)
		case reflect.Slice:
			switch f.Type().Elem().Kind() {
			case reflect.Uint8:
				f.SetBytes([]byte{0, byte(i), 0xff})
			case reflect.Uint64:
				f.Set(reflect.ValueOf([]uint64{1, 1 << 40}))
			default:
				return fmt.Errorf("%s.%s is a %s", v.Type().Name(), v.Type().Field(i).Name, f.Type())
			}
		case reflect.Bool:
			f.SetBool(true)
		default:
			return fmt.Errorf("%s.%s is a %s", v.Type().Name(), v.Type().Field(i).Name, f.Kind())
		}
	}
	return nil
}
