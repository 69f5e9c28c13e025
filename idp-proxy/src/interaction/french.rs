//! Dates and people as the pages write them in French: Paris time, presumed birth dates.

/// A date as people in France read it (Paris time): "24/08/2026".
pub(crate) fn french_date(ts: i64) -> String {
    paris(ts, "%d/%m/%Y")
}

/// A date and time, Paris time: "24/08/2026 à 14:05".
pub(crate) fn french_datetime(ts: i64) -> String {
    paris(ts, "%d/%m/%Y à %H:%M")
}

/// The day it is in Paris at `ts`.
pub(crate) fn paris_day(ts: i64) -> chrono::NaiveDate {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .with_timezone(&chrono_tz::Europe::Paris)
        .date_naive()
}

fn paris(ts: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| {
            d.with_timezone(&chrono_tz::Europe::Paris)
                .format(format)
                .to_string()
        })
        .unwrap_or_default()
}

/// "né le 24/08/1962" / "née le …", from the identité pivot; a presumed date as it is
/// known: "né en août 1962" (`1962-08-00`), "né en 1962" (`1962-00-00`).
pub(crate) fn born(identity: &mandate_store::Identity) -> String {
    const MONTHS: [&str; 12] = [
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ];
    let d = &identity.birthdate;
    let (year, month, day) = (d.get(0..4), d.get(5..7), d.get(8..10));
    let month_name = month
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.checked_sub(1)?));
    let date = match (year, month_name, day) {
        (Some(y), None, Some("00")) => format!("en {y}"),
        (Some(y), Some(m), Some("00")) => format!("en {m} {y}"),
        (Some(y), Some(_), Some(day)) => format!("le {day}/{}/{y}", month.unwrap_or_default()),
        _ => format!("le {d}"),
    };
    let born = match identity.gender.as_str() {
        "female" => "née",
        "male" => "né",
        _ => "né(e)",
    };
    format!("{born} {date}")
}

#[cfg(test)]
mod tests {
    use super::born;

    fn person(birthdate: &str, gender: &str) -> mandate_store::Identity {
        mandate_store::Identity {
            given_name: "Moussa".into(),
            family_name: "KEITA".into(),
            birthdate: birthdate.into(),
            gender: gender.into(),
            birthplace: None,
            birthcountry: "99335".into(),
            email: None,
            preferred_username: None,
        }
    }

    #[test]
    fn a_birth_date_reads_as_far_as_it_is_known() {
        assert_eq!(born(&person("1962-08-24", "male")), "né le 24/08/1962");
        assert_eq!(born(&person("1951-02-03", "female")), "née le 03/02/1951");
        // Presumed dates, as FranceConnect's identity providers give them.
        assert_eq!(born(&person("1962-08-00", "female")), "née en août 1962");
        assert_eq!(born(&person("1958-00-00", "male")), "né en 1958");
        assert_eq!(
            born(&person("1990-01-15", "unspecified")),
            "né(e) le 15/01/1990"
        );
    }
}
