package sqlstore

import (
	"context"
	"reflect"
	"testing"

	"hsmkms/kms"
)

func tags(kv ...string) []kms.TagRecord {
	var out []kms.TagRecord
	for i := 0; i < len(kv); i += 2 {
		out = append(out, kms.TagRecord{Key: kv[i], Value: kv[i+1]})
	}
	return out
}

func listAllTags(t *testing.T, s *Store, key string) []kms.TagRecord {
	t.Helper()
	ts, err := s.ListTags(context.Background(), key, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func TestPutTags(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled)
	mustCreate(t, s, keyID(2), acct1, kms.StateEnabled)
	if err := s.PutTags(ctx, keyID(2), tags("other", "key"), 10); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name    string
		put     []kms.TagRecord
		max     int
		want    error
		wantAll []kms.TagRecord
	}{
		{"add", tags("b", "1", "a", "2"), 3, nil, tags("a", "2", "b", "1")},
		{"overwrite does not count twice", tags("a", "new", "c", "3"), 3, nil, tags("a", "new", "b", "1", "c", "3")},
		{"over the limit changes nothing", tags("a", "x", "d", "4"), 3, kms.ErrStoreExhausted, tags("a", "new", "b", "1", "c", "3")},
		{"only overwrites at the limit", tags("b", "B", "c", "C"), 3, nil, tags("a", "new", "b", "B", "c", "C")},
		{"duplicate names in one call", tags("d", "1", "d", "2"), 4, nil, tags("a", "new", "b", "B", "c", "C", "d", "2")},
		{"empty value", tags("e", ""), 5, nil, tags("a", "new", "b", "B", "c", "C", "d", "2", "e", "")},
	}
	for _, st := range steps {
		wantErr(t, st.name, s.PutTags(ctx, keyID(1), st.put, st.max), st.want)
		if got := listAllTags(t, s, keyID(1)); !reflect.DeepEqual(got, st.wantAll) {
			t.Fatalf("%s: tags %v, want %v", st.name, got, st.wantAll)
		}
	}
	if got := listAllTags(t, s, keyID(2)); !reflect.DeepEqual(got, tags("other", "key")) {
		t.Fatalf("other key's tags changed: %v", got)
	}
	wantErr(t, "PutTags unknown key", s.PutTags(ctx, keyID(9), tags("a", "b"), 10), kms.ErrStoreNotFound)
	wantErr(t, "PutTags unknown key, no tags", s.PutTags(ctx, keyID(9), nil, 10), kms.ErrStoreNotFound)
}

func TestDeleteAndListTags(t *testing.T) {
	ctx := context.Background()
	s := openTemp(t)
	mustCreate(t, s, keyID(1), acct1, kms.StateEnabled)
	if err := s.PutTags(ctx, keyID(1), tags("a", "1", "b", "2", "c", "3", "d", "4", "e", "5"), 50); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "DeleteTags", s.DeleteTags(ctx, keyID(1), []string{"b", "absent", "d"}), nil)
	wantErr(t, "DeleteTags only absent", s.DeleteTags(ctx, keyID(1), []string{"zzz"}), nil)
	wantErr(t, "DeleteTags unknown key", s.DeleteTags(ctx, keyID(9), []string{"a"}), kms.ErrStoreNotFound)

	tests := []struct {
		after string
		limit int
		want  []kms.TagRecord
	}{
		{"", 0, tags("a", "1", "c", "3", "e", "5")},
		{"", 2, tags("a", "1", "c", "3")},
		{"c", 2, tags("e", "5")},
		{"b", 1, tags("c", "3")}, // after need not exist
		{"e", 2, nil},
	}
	for _, tc := range tests {
		got, err := s.ListTags(ctx, keyID(1), tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ListTags(after %q, limit %d) = %v, want %v", tc.after, tc.limit, got, tc.want)
		}
	}
	_, err := s.ListTags(ctx, keyID(9), "", 10)
	wantErr(t, "ListTags unknown key", err, kms.ErrStoreNotFound)
}
