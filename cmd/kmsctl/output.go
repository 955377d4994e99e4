package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

var timeType = reflect.TypeFor[time.Time]()

// toPlain converts an SDK output into JSON-ready values with the AWS CLI's
// conventions: field names as in the API, nil fields omitted, blobs in
// base64, times in RFC 3339, the SDK's ResultMetadata dropped.
func toPlain(v reflect.Value) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch {
	case v.Type() == timeType:
		return v.Interface().(time.Time).UTC().Format(time.RFC3339Nano)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8:
		if v.IsNil() {
			return nil
		}
		return base64.StdEncoding.EncodeToString(v.Bytes())
	case v.Kind() == reflect.Slice:
		if v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = toPlain(v.Index(i))
		}
		return out
	case v.Kind() == reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[fmt.Sprint(k.Interface())] = toPlain(v.MapIndex(k))
		}
		return out
	case v.Kind() == reflect.Struct:
		out := map[string]any{}
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() || f.Name == "ResultMetadata" {
				continue
			}
			if p := toPlain(v.Field(i)); p != nil {
				out[f.Name] = p
			}
		}
		return out
	case v.Kind() == reflect.String:
		return v.String()
	}
	return v.Interface()
}

// render writes an operation's result as JSON (indented, like the AWS
// CLI) or as a table: scalars as "Name  Value" rows, each list of objects
// as its own table with a column per field.
func render(w io.Writer, format string, v any) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "    ")
		return enc.Encode(v)
	}
	m, ok := v.(map[string]any)
	if !ok {
		_, err := fmt.Fprintln(w, v)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var lists []string
	for _, k := range sortedKeys(m) {
		switch x := m[k].(type) {
		case []any:
			lists = append(lists, k)
		case map[string]any:
			for _, sk := range sortedKeys(x) {
				fmt.Fprintf(tw, "%s.%s\t%s\n", k, sk, cell(x[sk]))
			}
		default:
			fmt.Fprintf(tw, "%s\t%s\n", k, cell(x))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, k := range lists {
		items := m[k].([]any)
		fmt.Fprintf(w, "\n%s (%d)\n", k, len(items))
		cols := map[string]bool{}
		for _, it := range items {
			if o, ok := it.(map[string]any); ok {
				for c := range o {
					cols[c] = true
				}
			}
		}
		if len(cols) == 0 {
			for _, it := range items {
				fmt.Fprintf(w, "  %s\n", cell(it))
			}
			continue
		}
		names := sortedKeys(cols)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  "+strings.Join(names, "\t"))
		for _, it := range items {
			o, _ := it.(map[string]any)
			row := make([]string, len(names))
			for i, c := range names {
				row[i] = cell(o[c])
			}
			fmt.Fprintln(tw, "  "+strings.Join(row, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		return x
	case map[string]any, []any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
