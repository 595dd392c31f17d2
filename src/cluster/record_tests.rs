//! Tests of the fleet's holding records: both encodings, the refusals, generation order.

use std::time::{Duration, SystemTime};

use super::*;
use crate::secret::Secret;
use crate::token::{Current, Holding, TicketPart, TokenPart};

const TOKEN: &str = "tok-SECRET-4242";
const TICKET: &str = "tkt-SECRET-1717";
const KEY: &str = "/t/tickets/dash/0123456789abcdef";

fn record(generation: u64) -> FleetRecord {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let hour = Duration::from_secs(3600);
    FleetRecord {
        ticket: "dash".into(),
        writer: "web-1".into(),
        stored: StoredTicket {
            kind: "sls".into(),
            identity: "sls a".into(),
            holding: Holding {
                current: Some(Current {
                    ticket: Some(TicketPart {
                        value: Secret::new(TICKET),
                        issued_at: now.into(),
                        expires_at: (now + 30 * 24 * hour).into(),
                    }),
                    token: TokenPart {
                        value: Secret::new(TOKEN),
                        username: None,
                        token_id: None,
                        issued_at: now.into(),
                        expires_at: (now + hour).into(),
                    },
                    generation,
                    refreshed_at: now.into(),
                    expires_mono: None,
                }),
                pending: None,
            },
        },
    }
}

fn sealer(byte: u8) -> Sealer {
    Sealer::from_key(&[byte; 32])
}

#[test]
fn a_record_round_trips_plain_and_sealed() {
    let r = record(7);
    let plain = r.encode(KEY, None);
    assert_eq!(plain.first(), Some(&b'{'));
    assert_eq!(FleetRecord::decode(KEY, "dash", &plain, None).unwrap(), r);
    let sealed = r.encode(KEY, Some(&sealer(1)));
    assert!(is_sealed(&sealed));
    for needle in [TOKEN, TICKET] {
        assert!(!sealed.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} in the sealed value");
    }
    let back = FleetRecord::decode(KEY, "dash", &sealed, Some(&sealer(1))).unwrap();
    assert_eq!((back.generation(), back), (7, r));
}

#[test]
fn a_value_is_refused_under_another_key_another_seal_or_another_ticket() {
    let r = record(1);
    let sealed = r.encode(KEY, Some(&sealer(1)));
    let moved = "/t/tickets/other/0123456789abcdef";
    assert!(matches!(
        FleetRecord::decode(moved, "other", &sealed, Some(&sealer(1))),
        Err(RecordError::Open { source: OpenError::Forged, .. })
    ));
    assert!(matches!(
        FleetRecord::decode(KEY, "dash", &sealed, Some(&sealer(2))),
        Err(RecordError::Open { source: OpenError::WrongKey { .. }, .. })
    ));
    assert_eq!(FleetRecord::decode(KEY, "dash", &sealed, None), Err(RecordError::SealedWithoutKey { key: KEY.into() }));
    // A node that seals never takes plain text: anyone with write access to etcd could plant it.
    let plain = r.encode(KEY, None);
    assert_eq!(
        FleetRecord::decode(KEY, "dash", &plain, Some(&sealer(1))),
        Err(RecordError::PlainWithKey { key: KEY.into() })
    );
    assert_eq!(
        FleetRecord::decode(KEY, "other", &plain, None),
        Err(RecordError::Misplaced { key: KEY.into(), found: "dash".into() })
    );
}

#[test]
fn a_malformed_value_is_refused_without_quoting_it() {
    let text = format!(
        r#"{{"ticket":"dash","writer":"w","kind":"sls","identity":"sls a","current":{{"token":{{"value":"{TOKEN}","issued_at":5}}}}}}"#
    );
    let e = FleetRecord::decode(KEY, "dash", text.as_bytes(), None).unwrap_err();
    assert!(matches!(e, RecordError::Format { what: "a JSON value of another shape", .. }), "{e:?}");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(TOKEN), "{shown}");
    assert!(shown.contains(KEY), "{shown}");
    let e = FleetRecord::decode(KEY, "dash", format!("{{\"ticket\": {TOKEN}").as_bytes(), None).unwrap_err();
    assert!(!format!("{e} {e:?}").contains(TOKEN), "{e}");
}

#[test]
fn debug_output_shows_no_secret() {
    let shown = format!("{:?}", record(3));
    assert!(!shown.contains(TOKEN) && !shown.contains(TICKET), "{shown}");
}

#[test]
fn generations_never_go_back() {
    assert!(supersedes(5, 4));
    assert!(supersedes(5, 5));
    assert!(!supersedes(4, 5));
    assert!(!supersedes(0, 1));
}
