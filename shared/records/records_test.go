package records

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

type rec struct {
	Name string `json:"name"`
	N    int    `json:"n"`
}

// WriteFile and ReplaceFile (which only does not sync) replace the whole file, give it the mode whatever the
// umask, and leave no temporary behind.
func TestWriteFileAndReplaceFileReplaceAndLeaveNoTemporary(t *testing.T) {
	for _, w := range []struct {
		name  string
		write func(string, []byte, os.FileMode) error
		mode  os.FileMode
	}{{"WriteFile", WriteFile, 0o640}, {"ReplaceFile", ReplaceFile, 0o644}} {
		t.Run(w.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "r.json")
			for _, text := range []string{"first", "second, longer than the first", "third"} {
				if err := w.write(path, []byte(text), w.mode); err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(path)
				if err != nil || string(got) != text {
					t.Fatalf("read %q, %v; want %q", got, err, text)
				}
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != w.mode {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), w.mode)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("the directory holds %d entries, want only the record: %v", len(entries), entries)
			}
		})
	}
}

func TestWriteFileErrorNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "r.json")
	err := WriteFile(path, []byte("x"), 0o600)
	if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v; want one naming %s and matching fs.ErrNotExist", err, path)
	}
	if strings.Contains(err.Error(), ".tmp-") {
		t.Errorf("the error names the temporary file: %v", err)
	}
}

func TestConcurrentWritersNeverLeaveAPartialRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.json")
	long := rec{Name: strings.Repeat("x", 1<<16)}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := long
			r.N = i
			if err := WriteJSON(path, r, 0o600); err != nil {
				t.Error(err)
			}
		}()
	}
	stop := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				readErr <- nil
				return
			default:
			}
			var r rec
			if err := ReadJSON(path, &r); err != nil && !errors.Is(err, fs.ErrNotExist) {
				readErr <- err
				return
			}
		}
	}()
	wg.Wait()
	close(stop)
	if err := <-readErr; err != nil {
		t.Fatalf("a reader saw a partial record: %v", err)
	}
}

func TestStoreSaveLoadListRemove(t *testing.T) {
	root := filepath.Join(t.TempDir(), "pods")
	s := Store{Root: root, File: "record.json"}
	if keys, err := s.List(); err != nil || len(keys) != 0 {
		t.Fatalf("List of a missing root = %v, %v; want none", keys, err)
	}
	for _, k := range []string{"b", "a", "c"} {
		if err := os.MkdirAll(s.Dir(k), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Save("a", rec{Name: "a", N: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Save("b", rec{Name: "b", N: 2}); err != nil {
		t.Fatal(err)
	}
	// a file beside the directories is not a record
	if err := os.WriteFile(filepath.Join(root, "stray"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := s.List()
	if err != nil || !reflect.DeepEqual(keys, []string{"a", "b"}) {
		t.Fatalf("List = %v, %v; want [a b] (c has no record)", keys, err)
	}
	var got rec
	if err := s.Load("b", &got); err != nil || got != (rec{Name: "b", N: 2}) {
		t.Fatalf("Load(b) = %+v, %v", got, err)
	}
	if fi, _ := os.Stat(s.Path("a")); fi.Mode().Perm() != 0o600 {
		t.Errorf("a record's default mode is %v, want 0600", fi.Mode().Perm())
	}
	if err := s.Load("c", &got); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), s.Path("c")) {
		t.Errorf("Load of a missing record = %v; want fs.ErrNotExist naming %s", err, s.Path("c"))
	}
	if err := s.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("a"); err != nil {
		t.Errorf("a second Remove = %v, want nil", err)
	}
	if keys, _ := s.List(); !reflect.DeepEqual(keys, []string{"b"}) {
		t.Errorf("List after Remove(a) = %v, want [b]", keys)
	}
}

func TestStoreSaveNeverMakesADeletedPodsDirectory(t *testing.T) {
	s := Store{Root: t.TempDir(), File: "record.json"}
	err := s.Save("gone", rec{})
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), s.Path("gone")) {
		t.Fatalf("Save into a missing directory = %v; want fs.ErrNotExist naming the file", err)
	}
	if _, err := os.Stat(s.Dir("gone")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Save made the directory of a deleted pod: %v", err)
	}
}

func TestReadJSONNamesADamagedRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	if err := os.WriteFile(path, []byte(`{"name": `), 0o600); err != nil {
		t.Fatal(err)
	}
	var r rec
	err := ReadJSON(path, &r)
	if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v; want one saying %s is damaged", err, path)
	}
}
