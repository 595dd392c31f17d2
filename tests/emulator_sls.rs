//! The SLS provider against the emulator in-process: every signing variant the emulator must
//! accept (v1 hmac-sha256, hmac-sha1, STS), and the rejections it must make.

use std::time::{Duration, SystemTime};

use emulator::{Emulator, EmulatorKey, generate_key};
use ticketd::apis::{Operation, ProviderError, sls};
use ticketd::clock::{Clock, SystemClock};
use ticketd::config::{Endpoint, SlsSpec};
use ticketd::credentials::Credentials;
use ticketd::secret::Secret;
use ticketd::signing::sls::V1Mac;
use ticketd::token::Issued;

fn spec(emulator: &Emulator, signature: V1Mac) -> SlsSpec {
    SlsSpec {
        endpoint: Endpoint { base: url::Url::parse(&emulator.url()).unwrap() },
        ticket_lifetime: Duration::from_secs(3600),
        token_lifetime: Duration::from_secs(600),
        ticket_renew_before: Duration::from_secs(600),
        signature,
        console_url: None,
        console_params: vec![],
    }
}

fn creds(key: &EmulatorKey) -> Credentials {
    Credentials {
        access_key_id: Secret::new(key.access_key_id.clone()),
        access_key_secret: Secret::new(key.access_key_secret.expose()),
        security_token: key.security_token.as_ref().map(|t| Secret::new(t.expose())),
        expires_at: None,
    }
}

async fn mint_and_refresh(
    emulator: &Emulator,
    signature: V1Mac,
    credentials: &Credentials,
) -> Result<(), ProviderError> {
    let http = ticketd::http::client();
    let clock = SystemClock;
    let spec = spec(emulator, signature);
    let Issued::Ticket(ticket) = sls::call(&http, &clock, &spec, Operation::Mint, credentials).await? else {
        panic!("CreateTicket gives a ticket")
    };
    assert_eq!(ticketd::jwt::expiry(ticket.value.expose()).map(|t| t > clock.now()), Some(true));
    let Issued::Token(token) =
        sls::call(&http, &clock, &spec, Operation::Refresh { ticket: ticket.value.clone() }, credentials).await?
    else {
        panic!("RefreshToken gives a token")
    };
    let exp = ticketd::jwt::expiry(token.value.expose()).unwrap();
    assert!(exp <= clock.now() + Duration::from_secs(601), "the emulator honours accessTokenExpirationTime");
    Ok(())
}

#[tokio::test]
async fn every_signing_variant_is_accepted_and_bad_ones_are_rejected() {
    let plain = generate_key("LTAIplain");
    let mut sts = generate_key("STS.");
    sts.security_token = Some(emulator::Secret::new("CAIS-sts-token"));
    let emulator =
        Emulator::start(([127, 0, 0, 1], 0).into(), vec![plain.clone(), sts.clone()], SystemTime::now).await.unwrap();

    mint_and_refresh(&emulator, V1Mac::HmacSha256, &creds(&plain)).await.unwrap();
    mint_and_refresh(&emulator, V1Mac::HmacSha1, &creds(&plain)).await.unwrap();
    mint_and_refresh(&emulator, V1Mac::HmacSha256, &creds(&sts)).await.unwrap();
    let stats = emulator.stats();
    assert_eq!((stats.create_ticket, stats.refresh_token, stats.rejected), (3, 3, 0));

    // A wrong secret, a missing STS token and an unknown key are refused with SLS's codes.
    let mut wrong = creds(&plain);
    wrong.access_key_secret = Secret::new("wrong");
    let err = mint_and_refresh(&emulator, V1Mac::HmacSha256, &wrong).await.unwrap_err().to_string();
    assert!(err.contains("HTTP 401 SignatureNotMatch"), "{err}");
    let mut no_token = creds(&sts);
    no_token.security_token = None;
    let err = mint_and_refresh(&emulator, V1Mac::HmacSha256, &no_token).await.unwrap_err().to_string();
    assert!(err.contains("HTTP 401"), "{err}");
    let mut unknown = creds(&plain);
    unknown.access_key_id = Secret::new("LTAInobody");
    let err = mint_and_refresh(&emulator, V1Mac::HmacSha256, &unknown).await.unwrap_err().to_string();
    assert!(err.contains("InvalidAccessKeyId"), "{err}");
    // An unknown ticket is refused; its value never reaches the error text.
    let http = ticketd::http::client();
    let err = sls::call(
        &http,
        &SystemClock,
        &spec(&emulator, V1Mac::HmacSha256),
        Operation::Refresh { ticket: Secret::new("eyJforged.ticket.value") },
        &creds(&plain),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("HTTP 401") && !err.contains("eyJforged"), "{err}");
    assert_eq!(emulator.stats().rejected, 4);
}

#[tokio::test]
async fn a_skewed_clock_is_rejected_as_request_time_expired() {
    struct Behind;
    impl Clock for Behind {
        fn now(&self) -> std::time::SystemTime {
            std::time::SystemTime::now() - Duration::from_secs(20 * 60)
        }
    }
    let key = generate_key("LTAIskew");
    let emulator = Emulator::start(([127, 0, 0, 1], 0).into(), vec![key.clone()], SystemTime::now).await.unwrap();
    let http = ticketd::http::client();
    let err = sls::call(&http, &Behind, &spec(&emulator, V1Mac::HmacSha256), Operation::Mint, &creds(&key))
        .await
        .unwrap_err();
    assert!(err.is_clock_skew(), "{err}");
    assert!(err.to_string().contains("RequestTimeExpired"));
}

/// `Fault::Delay` (the fleet tests stop a leader with its call in flight): the call is held, then
/// answered by the real handler, and counted as injected on arrival.
#[tokio::test]
async fn a_delayed_call_is_held_then_answered_as_it_would_have_been() {
    use emulator::faults::{Fault, FaultPlan, Service, Trigger};
    let key = generate_key("LTAIdelay");
    let emulator = Emulator::start(([127, 0, 0, 1], 0).into(), vec![key.clone()], SystemTime::now).await.unwrap();
    let delay = Duration::from_millis(300);
    emulator.inject(Service::Sls, Some(FaultPlan { fault: Fault::Delay(delay), trigger: Trigger::FirstN(1) }));
    let started = std::time::Instant::now();
    let call = tokio::spawn({
        let (spec, credentials) = (spec(&emulator, V1Mac::HmacSha256), creds(&key));
        async move { sls::call(&ticketd::http::client(), &SystemClock, &spec, Operation::Mint, &credentials).await }
    });
    // Counted on arrival, answered only after the delay.
    let arrived = async {
        while emulator.stats().faults_injected == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), arrived).await.expect("the call arrives");
    assert_eq!(emulator.stats().create_ticket, 0, "held: not answered yet");
    let issued = call.await.unwrap().expect("a delayed call succeeds");
    assert!(matches!(issued, Issued::Ticket(_)), "CreateTicket gives a ticket");
    assert!(started.elapsed() >= delay, "held {:?}", started.elapsed());
    let stats = emulator.stats();
    assert_eq!((stats.create_ticket, stats.faults_injected, stats.rejected), (1, 1, 0));
    // Only the first call: the next one is answered at once.
    mint_and_refresh(&emulator, V1Mac::HmacSha256, &creds(&key)).await.unwrap();
    assert_eq!(emulator.stats().faults_injected, 1);
}
