//! The store conformance suite on the in-memory store.

tollgate::store_conformance_tests!(async { (tollgate::MemoryStore::new(), ()) });
