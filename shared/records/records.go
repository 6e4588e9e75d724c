// Package records is the one way a backend keeps its per-pod records on disk: each write goes to a
// temporary file in the same directory, is synced, renamed over the record and the directory synced, so that
// a crash or a power loss leaves the old record or the new one, never part of either, and never a rename
// that the disk forgot. Errors name the file.
package records

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// WriteFile replaces path with data, with permissions mode, atomically and durably (see the package doc).
// The directory must exist.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return replace(path, data, mode, true)
}

// ReplaceFile is WriteFile without the syncs: a reader never sees a part of the file, but a crash may lose
// it. For a file that a durable one written later supersedes.
func ReplaceFile(path string, data []byte, mode os.FileMode) error {
	return replace(path, data, mode, false)
}

func replace(path string, data []byte, mode os.FileMode, durable bool) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode) // CreateTemp makes 0600 whatever the umask
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	if !durable {
		return nil
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("cannot write %s: syncing its directory: %w", path, unwrapPath(err))
	}
	return nil
}

// WriteJSON writes v as JSON to path with WriteFile.
func WriteJSON(path string, v any, mode os.FileMode) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return WriteFile(path, data, mode)
}

// ReadJSON reads the JSON of path into v. A missing file is an error that errors.Is fs.ErrNotExist; a file
// that is not JSON of v's shape is an error naming the file as damaged.
func ReadJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("cannot read %s: %w", path, unwrapPath(err))
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("the record %s is damaged: %w", path, err)
	}
	return nil
}

// Remove removes path durably; a file already gone is no error.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("cannot remove %s: %w", path, unwrapPath(err))
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("cannot remove %s: syncing its directory: %w", path, unwrapPath(err))
	}
	return nil
}

// Store keeps one JSON record per key (a pod UID) in Root/<key>/File. The key's directory belongs to the
// backend, which makes it when it takes the pod and removes it when the pod is deleted: Save never makes it,
// so that a write racing a delete cannot bring a deleted pod back.
type Store struct {
	Root string      // the directory of one directory per key
	File string      // the record's file name inside the key's directory
	Mode os.FileMode // the record's permissions; 0 is 0600 (records may hold a pod's secrets)
}

// Dir is the directory of key.
func (s Store) Dir(key string) string { return filepath.Join(s.Root, key) }

// Path is the record file of key.
func (s Store) Path(key string) string { return filepath.Join(s.Root, key, s.File) }

// Save writes v as the record of key. When key's directory is gone the error says so and errors.Is
// fs.ErrNotExist.
func (s Store) Save(key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("cannot encode %s: %w", s.Path(key), err)
	}
	return s.SaveRaw(key, data)
}

// SaveRaw is Save for a record already encoded as JSON.
func (s Store) SaveRaw(key string, data []byte) error {
	if _, err := os.Stat(s.Dir(key)); err != nil {
		return fmt.Errorf("cannot write %s: its directory is gone (the pod was deleted): %w", s.Path(key), unwrapPath(err))
	}
	mode := s.Mode
	if mode == 0 {
		mode = 0o600
	}
	return WriteFile(s.Path(key), data, mode)
}

// Load reads the record of key into v (see ReadJSON for the errors).
func (s Store) Load(key string, v any) error { return ReadJSON(s.Path(key), v) }

// Remove removes the record of key (not its directory); a record already gone is no error.
func (s Store) Remove(key string) error { return Remove(s.Path(key)) }

// List is the keys that have a record, sorted; a missing Root has none.
func (s Store) List() ([]string, error) {
	entries, err := os.ReadDir(s.Root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot list the records in %s: %w", s.Root, unwrapPath(err))
	}
	var keys []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if fi, err := os.Stat(s.Path(e.Name())); err == nil && fi.Mode().IsRegular() {
			keys = append(keys, e.Name())
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// syncDir makes a rename or a removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// unwrapPath drops the *fs.PathError's own path, which the messages name already (and which may be the
// temporary file's), keeping the errno so that errors.Is still works.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
