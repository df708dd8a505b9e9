//! The store conformance suite on PostgreSQL, each test in a schema of its own.

tollgate::store_conformance_tests!(optional: tollgate_postgres::testing::fresh());
