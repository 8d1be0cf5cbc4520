//! The simulators' own normalisers (their independent oracle for the ground truth) give the
//! expected key for every case of the shared table `key_cases.json`, which the domain's
//! normalisers are checked against too.

use tandem_sim::key_cases::mismatches;
use tandem_sim::normalise::{email_key, name_key, phone_key, website_key};

#[test]
fn the_simulators_phone_key_gives_every_expected_key() {
    assert_eq!(mismatches("phone", phone_key), Vec::<String>::new());
}

#[test]
fn the_simulators_website_key_gives_every_expected_key() {
    assert_eq!(mismatches("website", website_key), Vec::<String>::new());
}

#[test]
fn the_simulators_name_key_gives_every_expected_key() {
    assert_eq!(mismatches("name", name_key), Vec::<String>::new());
}

#[test]
fn the_simulators_email_key_gives_every_expected_key() {
    assert_eq!(mismatches("email", email_key), Vec::<String>::new());
}
