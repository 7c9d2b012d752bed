package credstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/credstore"
)

// benchCredential is the size of a typical das-Peak credential string.
var benchCredential = strings.Repeat("Q", 4096)

const benchIDs = 1000

func benchRecord() credstore.Record {
	return credstore.Record{Credential: benchCredential, ModelHash: "model-hash", AudioRef: "s3://bucket/enrol.wav"}
}

var benchIDList = func() []string {
	ids := make([]string, benchIDs)
	for i := range ids {
		ids[i] = fmt.Sprintf("+3460%07d", i)
	}
	return ids
}()

func benchID(i int) string { return benchIDList[i%benchIDs] }

func fill(b *testing.B, s credstore.Store) {
	b.Helper()
	for i := range benchIDs {
		if err := s.Put(context.Background(), benchID(i), benchRecord()); err != nil {
			b.Fatal(err)
		}
	}
}

func benchGet(b *testing.B, s credstore.Store) {
	fill(b, s)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchCredential)))
	for i := 0; b.Loop(); i++ {
		if _, err := s.Get(ctx, benchID(i)); err != nil {
			b.Fatal(err)
		}
	}
}

func benchPut(b *testing.B, s credstore.Store) {
	ctx := context.Background()
	rec := benchRecord()
	b.ReportAllocs()
	b.SetBytes(int64(len(benchCredential)))
	for i := 0; b.Loop(); i++ {
		if err := s.Put(ctx, benchID(i), rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemoryGet(b *testing.B) { benchGet(b, credstore.NewMemory()) }

func BenchmarkMemoryStore(b *testing.B) { benchPut(b, credstore.NewMemory()) }

func BenchmarkEncryptedMemoryGet(b *testing.B) { benchGet(b, encrypt(b, credstore.NewMemory())) }

func BenchmarkEncryptedMemoryStore(b *testing.B) { benchPut(b, encrypt(b, credstore.NewMemory())) }

// The SQLite benchmarks use a file in WAL mode with synchronous=NORMAL.
func BenchmarkSQLiteGet(b *testing.B) {
	benchGet(b, newSQLStore(b, openSQLite(b), credstore.SQLite))
}

func BenchmarkSQLiteStore(b *testing.B) {
	benchPut(b, newSQLStore(b, openSQLite(b), credstore.SQLite))
}

// benchParallel runs b.N operations from clients goroutines and reports
// the aggregate throughput in ops/s.
func benchParallel(b *testing.B, s credstore.Store, clients int, op func(ctx context.Context, s credstore.Store, i int) error) {
	ctx := context.Background()
	var (
		next   atomic.Int64
		failed atomic.Value
		wg     sync.WaitGroup
	)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchCredential)))
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				if err := op(ctx, s, i); err != nil {
					failed.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
}

func benchServerParallel(b *testing.B, d credstore.Dialect, clients int) {
	db := openServer(b, d)
	db.SetMaxOpenConns(clients)
	db.SetMaxIdleConns(clients)
	s := newSQLStore(b, db, d)
	fill(b, s)
	b.Run("Get", func(b *testing.B) {
		benchParallel(b, s, clients, func(ctx context.Context, s credstore.Store, i int) error {
			_, err := s.Get(ctx, benchID(i*7919))
			return err
		})
	})
	b.Run("Store", func(b *testing.B) {
		rec := benchRecord()
		benchParallel(b, s, clients, func(ctx context.Context, s credstore.Store, i int) error {
			return s.Put(ctx, benchID(i*7919), rec)
		})
	})
}

// BenchmarkPostgresParallel16 measures PostgreSQL throughput with 16
// concurrent clients (16 goroutines sharing one *sql.DB of up to 16
// connections).
func BenchmarkPostgresParallel16(b *testing.B) { benchServerParallel(b, credstore.Postgres, 16) }

// BenchmarkMySQLParallel16 is the same against MySQL/MariaDB.
func BenchmarkMySQLParallel16(b *testing.B) { benchServerParallel(b, credstore.MySQL, 16) }
