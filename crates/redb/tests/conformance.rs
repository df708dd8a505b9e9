//! The store conformance suite on a redb file.

tollgate::store_conformance_tests!(async {
    let dir = tempfile::tempdir().unwrap();
    let store = tollgate_redb::RedbStore::open(dir.path().join("tokens.redb")).unwrap();
    (store, dir)
});
