package keyed

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestOneHolderPerKey(t *testing.T) {
	var m Mutex
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := m.Lock("uid")
			n := inside.Add(1)
			for {
				old := most.Load()
				if n <= old || most.CompareAndSwap(old, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			inside.Add(-1)
			unlock()
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders of one key at once, want 1", most.Load())
	}
	if m.Len() != 0 {
		t.Fatalf("%d keys kept after every holder left, want 0", m.Len())
	}
}

func TestKeysDoNotBlockEachOther(t *testing.T) {
	var m Mutex
	unlock := m.Lock("a")
	defer unlock()
	done := make(chan struct{})
	go func() {
		m.Lock("b")()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("locking key b waited for the holder of key a")
	}
}
