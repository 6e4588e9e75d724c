// Package keyed provides a mutex per key: work on one key (a pod UID) is serialised while work on other keys
// runs on. The dispatcher uses it for a pod's create and delete; every backend uses it for the same.
package keyed

import "sync"

// Mutex is a set of mutexes, one per key, made on first use and dropped when nobody holds or waits for it, so
// a long-running process keeps no entry per pod it has ever seen. The zero value is ready to use.
type Mutex struct {
	mu    sync.Mutex
	locks map[string]*lock
}

type lock struct {
	mu   sync.Mutex
	refs int // holders and waiters
}

// Lock blocks until the key's mutex is held and returns the function that releases it.
func (m *Mutex) Lock(key string) (unlock func()) {
	m.mu.Lock()
	if m.locks == nil {
		m.locks = map[string]*lock{}
	}
	l := m.locks[key]
	if l == nil {
		l = &lock{}
		m.locks[key] = l
	}
	l.refs++
	m.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		m.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(m.locks, key)
		}
		m.mu.Unlock()
	}
}

// Len is the number of keys held or waited for.
func (m *Mutex) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.locks)
}
