package scoring

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
)

// checkKeys walks a JSON document against the struct type t and rejects
// what encoding/json lets through: keys that match a field only when case
// is ignored ("blocksize" for "blockSize") and keys given twice. Unknown
// keys are left to the decoder's DisallowUnknownFields; maps' keys are
// not checked here.
func checkKeys(doc []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	return walk(dec, t, "")
}

func walk(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	if d == '[' {
		for dec.More() {
			if err := walk(dec, nil, path+"[]"); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		if seen[key] {
			return fmt.Errorf("field %q given twice", path+key)
		}
		seen[key] = true
		ft, err := fieldType(t, key, path)
		if err != nil {
			return err
		}
		if err := walk(dec, ft, path+key+"."); err != nil {
			return err
		}
	}
	_, err = dec.Token()
	return err
}

// fieldType returns the struct type of t's field tagged key (nil when it
// is not a struct, or t is not one), and an error when key names a field
// only in another case.
func fieldType(t reflect.Type, key, path string) (reflect.Type, error) {
	if t == nil || t.Kind() != reflect.Struct {
		return nil, nil
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == key:
			if f.Type.Kind() == reflect.Struct {
				return f.Type, nil
			}
			return nil, nil
		case strings.EqualFold(name, key):
			return nil, fmt.Errorf("unknown field %q (did you mean %q?)", path+key, path+name)
		}
	}
	return nil, nil
}
