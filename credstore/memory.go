package credstore

import (
	"context"
	"fmt"
	"sync"
)

// Memory is a Store that keeps records in process memory. It is safe for
// concurrent use, needs no Close, and loses everything when the process
// exits: use it for tests and demos, and the [SQL] store to keep
// credentials.
//
// It accepts Credential and AudioRef values up to EnvelopeHeadroom bytes
// over MaxCredentialSize and MaxAudioRefLen, so it can sit under
// [Encrypted]. The zero value is not usable; call [NewMemory].
type Memory struct {
	mu   sync.RWMutex
	recs map[string]Record
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty memory store.
func NewMemory() *Memory {
	return &Memory{recs: make(map[string]Record)}
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, id string, rec Record) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := validateRecord(rec, EnvelopeHeadroom); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("credstore: put: %w", err)
	}
	t := now()
	m.mu.Lock()
	defer m.mu.Unlock()
	rec.CreatedAt = t
	if old, ok := m.recs[id]; ok {
		rec.CreatedAt = old.CreatedAt
	}
	rec.UpdatedAt = t
	m.recs[id] = rec
	return nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, id string) (Record, error) {
	if err := ValidateID(id); err != nil {
		return Record{}, err
	}
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("credstore: get: %w", err)
	}
	m.mu.RLock()
	rec, ok := m.recs[id]
	m.mu.RUnlock()
	if !ok {
		return Record{}, ErrNotFound
	}
	return rec, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("credstore: delete: %w", err)
	}
	m.mu.Lock()
	delete(m.recs, id)
	m.mu.Unlock()
	return nil
}

// Remove implements Remover.
func (m *Memory) Remove(ctx context.Context, id string) (bool, error) {
	if err := ValidateID(id); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("credstore: delete: %w", err)
	}
	m.mu.Lock()
	_, ok := m.recs[id]
	delete(m.recs, id)
	m.mu.Unlock()
	return ok, nil
}

// Len returns the number of records held.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.recs)
}
