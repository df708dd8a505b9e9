//! `TokenFormat::new` and `TokenFormat::check` on arbitrary input: never a panic, `check`
//! agrees with an independent reading of the format, every generated token passes and every
//! one-character change of one is refused.

#![no_main]

mod common;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tollgate::TokenFormat;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    prefix: &'a str,
    candidate: &'a str,
    /// Where to change a generated token, modulo its length.
    position: u16,
    replacement: char,
}

fn check_format(format: &TokenFormat, candidate: &str, position: u16, replacement: char) {
    let head = format!("{}_", format.prefix());
    let accepted = format.check(candidate).is_ok();
    assert_eq!(
        accepted,
        common::oracle_accepts(&head, candidate),
        "check and the format disagree on {candidate:?} (prefix {head:?})"
    );

    let token = format.generate().expect("the OS RNG works");
    let token = token.expose_secret();
    assert!(token.starts_with(&head));
    assert_eq!(token.len(), head.len() + 49);
    assert_eq!(format.check(token), Ok(()), "a generated token is refused");
    if accepted {
        // Same shape as what `generate` issues.
        assert_eq!(candidate.len(), token.len());
        assert!(candidate.starts_with(&head));
    }

    let index = usize::from(position) % token.len();
    let original = token.as_bytes()[index] as char;
    if replacement != original {
        let mut mutated = String::with_capacity(token.len() + 4);
        mutated.push_str(&token[..index]);
        mutated.push(replacement);
        mutated.push_str(&token[index + 1..]);
        assert!(
            format.check(&mutated).is_err(),
            "{mutated:?} (one character changed at {index}) is accepted"
        );
    }
}

fuzz_target!(|input: Input<'_>| {
    check_format(
        &TokenFormat::default(),
        input.candidate,
        input.position,
        input.replacement,
    );
    match TokenFormat::new(input.prefix) {
        Ok(format) => {
            let p = input.prefix.as_bytes();
            assert!(
                (1..=16).contains(&p.len()),
                "prefix {:?} accepted",
                input.prefix
            );
            assert!(
                p[0].is_ascii_lowercase(),
                "prefix {:?} accepted",
                input.prefix
            );
            assert!(
                p.iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
                "prefix {:?} accepted",
                input.prefix
            );
            assert_eq!(format.prefix(), input.prefix);
            check_format(&format, input.candidate, input.position, input.replacement);
        }
        Err(err) => assert_eq!(err.kind(), tollgate::ErrorKind::InvalidInput),
    }
});
