// Package minheap is container/heap's algorithm on a typed slice: the same
// order of pushes and pops as container/heap with the same Less, without
// boxing every pushed element in an interface (an allocation per push).
// The load generator's model and the latency processor's conversion
// queue use it; both depend on that exact order (reproducible runs,
// unchanged snapshots).
package minheap

// Heap is a min-heap of T ordered by Less. The zero value with Less set
// is an empty heap.
type Heap[T any] struct {
	// S holds the elements in heap order; S[0] is the least. Read it to
	// snapshot the heap; after setting it, call Init.
	S    []T
	Less func(a, b *T) bool
}

// Len returns the number of elements.
func (h *Heap[T]) Len() int { return len(h.S) }

// Top returns the least element; the heap must not be empty.
func (h *Heap[T]) Top() *T { return &h.S[0] }

// Init establishes the heap order over S (container/heap.Init).
func (h *Heap[T]) Init() {
	n := len(h.S)
	for i := n/2 - 1; i >= 0; i-- {
		h.down(i, n)
	}
}

// Push adds x (container/heap.Push).
func (h *Heap[T]) Push(x T) {
	h.S = append(h.S, x)
	h.up(len(h.S) - 1)
}

// Pop removes and returns the least element (container/heap.Pop); the
// heap must not be empty.
func (h *Heap[T]) Pop() T {
	n := len(h.S) - 1
	h.S[0], h.S[n] = h.S[n], h.S[0]
	h.down(0, n)
	x := h.S[n]
	var zero T
	h.S[n] = zero
	h.S = h.S[:n]
	return x
}

func (h *Heap[T]) up(j int) {
	for {
		i := (j - 1) / 2 // parent
		if i == j || !h.Less(&h.S[j], &h.S[i]) {
			break
		}
		h.S[i], h.S[j] = h.S[j], h.S[i]
		j = i
	}
}

func (h *Heap[T]) down(i, n int) {
	for {
		j1 := 2*i + 1
		if j1 >= n || j1 < 0 {
			break
		}
		j := j1
		if j2 := j1 + 1; j2 < n && h.Less(&h.S[j2], &h.S[j1]) {
			j = j2
		}
		if !h.Less(&h.S[j], &h.S[i]) {
			break
		}
		h.S[i], h.S[j] = h.S[j], h.S[i]
		i = j
	}
}
