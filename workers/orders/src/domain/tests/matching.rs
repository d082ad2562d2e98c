//! Matching lines to the catalog, resolutions, exception reconciliation and customer keys.

use super::*;

#[test]
fn sku_lines_match_active_products_only() {
    let p = two_line_order();
    let line = Line::from_placed(&p.lines[0]);
    let active = product("MUG", true);
    let inactive = product("MUG", false);
    match match_line(
        &line,
        &Lookup {
            by_sku: Some(&active),
            ..Lookup::default()
        },
    ) {
        Match::Matched(m) => {
            assert_eq!(m.sku, sku("MUG"));
            assert_eq!(m.tax_category, TaxCategory::Reduced, "catalog's category");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        match_line(
            &line,
            &Lookup {
                by_sku: Some(&inactive),
                ..Lookup::default()
            }
        ),
        Match::Unmatched {
            problem: ItemProblem::InactiveProduct,
            sku: Some(sku("MUG"))
        }
    );
    assert_eq!(
        match_line(&line, &Lookup::default()),
        Match::Unmatched {
            problem: ItemProblem::UnknownSku,
            sku: Some(sku("MUG"))
        }
    );
}

#[test]
fn the_lines_own_tax_category_wins() {
    let p = placed(
        json!([{"line_id": "1", "sku": "MUG", "title": "Mug", "quantity": 1, "unit_price": "10.00", "tax_category": "zero"}]),
        "14.95",
    );
    let line = Line::from_placed(&p.lines[0]);
    let prod = product("MUG", true);
    let Match::Matched(m) = match_line(
        &line,
        &Lookup {
            by_sku: Some(&prod),
            ..Lookup::default()
        },
    ) else {
        panic!("should match")
    };
    assert_eq!(m.tax_category, TaxCategory::Zero);
}

fn gtin_line() -> Line {
    let p = placed(
        json!([{"line_id": "1", "gtin": "4006381333931", "title": "Pen", "quantity": 1, "unit_price": "10.00"}]),
        "14.95",
    );
    Line::from_placed(&p.lines[0])
}

#[test]
fn gtin_lines_match_catalog_then_mapping() {
    let line = gtin_line();
    let catalog = [product("PEN-B", true), product("PEN-A", true)];
    let Match::Matched(m) = match_line(
        &line,
        &Lookup {
            by_gtin: &catalog,
            ..Lookup::default()
        },
    ) else {
        panic!()
    };
    assert_eq!(m.sku, sku("PEN-A"), "lowest SKU wins deterministically");

    let inactive = [product("OLD", false)];
    let mapped_sku = sku("PEN-NEW");
    let mapped = product("PEN-NEW", true);
    let Match::Matched(m) = match_line(
        &line,
        &Lookup {
            by_gtin: &inactive,
            mapping: Some((&mapped_sku, Some(&mapped))),
            ..Lookup::default()
        },
    ) else {
        panic!()
    };
    assert_eq!(
        m.sku, mapped_sku,
        "a mapping beats an inactive catalog match"
    );

    assert_eq!(
        match_line(
            &line,
            &Lookup {
                by_gtin: &inactive,
                ..Lookup::default()
            }
        ),
        Match::Unmatched {
            problem: ItemProblem::InactiveProduct,
            sku: None
        }
    );
    assert_eq!(
        match_line(
            &line,
            &Lookup {
                mapping: Some((&mapped_sku, None)),
                ..Lookup::default()
            }
        ),
        Match::Unmatched {
            problem: ItemProblem::UnknownSku,
            sku: Some(mapped_sku.clone())
        }
    );
    let gone = product("PEN-NEW", false);
    assert_eq!(
        match_line(
            &line,
            &Lookup {
                mapping: Some((&mapped_sku, Some(&gone))),
                ..Lookup::default()
            }
        ),
        Match::Unmatched {
            problem: ItemProblem::InactiveProduct,
            sku: Some(mapped_sku.clone())
        }
    );
    assert_eq!(
        match_line(&line, &Lookup::default()),
        Match::Unmatched {
            problem: ItemProblem::UnknownGtin,
            sku: None
        }
    );
}

#[test]
fn an_ean13_and_its_zero_padded_gtin14_normalise_to_one_gtin14() {
    let ean13 = Gtin::parse("4006381333931").unwrap();
    let gtin14 = Gtin::parse("04006381333931").unwrap();
    assert_eq!(ean13.to_gtin14(), gtin14.to_gtin14());
}

#[test]
fn a_replacing_revision_keeps_an_operators_match() {
    let old_unmatched = gtin_line();
    let mut old = gtin_line();
    old.matched = Some(MatchedProduct {
        sku: sku("PEN-OP"),
        tax_category: TaxCategory::Standard,
        tax_class: None,
        exemption_reference: None,
        setup_template_version: None,
        catalog_title: "Pen".into(),
    });
    let mut new = gtin_line();
    new.requested_tax_category = Some(TaxCategory::Reduced);
    assert!(carry_over_match(&old, &mut new));
    let m = new.matched.clone().unwrap();
    assert_eq!(m.sku, sku("PEN-OP"));
    assert_eq!(
        m.tax_category,
        TaxCategory::Reduced,
        "the new line's own category wins"
    );

    let mut fresh = gtin_line();
    assert!(
        !carry_over_match(&old_unmatched, &mut fresh),
        "nothing to carry"
    );
    let mut changed = gtin_line();
    changed.gtin = Some(Gtin::parse("4012345678901").unwrap());
    assert!(
        !carry_over_match(&old, &mut changed),
        "another product: match again"
    );
    assert!(changed.matched.is_none());
}

#[test]
fn resolutions_must_name_a_sold_product() {
    let s = sku("PEN");
    assert!(resolve_to(&s, Some(&product("PEN", true)), None).is_ok());
    assert!(
        resolve_to(&s, Some(&product("PEN", false)), None)
            .unwrap_err()
            .contains("inactive")
    );
    assert!(
        resolve_to(&s, None, None)
            .unwrap_err()
            .contains("not in the catalog")
    );
}

#[test]
fn resolution_checks() {
    use ExceptionResolution as R;
    let a = sku("A");
    let b = sku("B");
    assert_eq!(
        check_resolution(ExceptionStatus::Open, None, None, R::MapToSku, Some(&a)),
        ResolutionCheck::Apply
    );
    assert_eq!(
        check_resolution(
            ExceptionStatus::Resolved,
            Some(R::MapToSku),
            Some(&a),
            R::MapToSku,
            Some(&a)
        ),
        ResolutionCheck::AlreadyApplied
    );
    assert!(matches!(
        check_resolution(
            ExceptionStatus::Resolved,
            Some(R::MapToSku),
            Some(&a),
            R::MapToSku,
            Some(&b)
        ),
        ResolutionCheck::Refuse(r) if r.contains("map_to_sku A")
    ));
    assert!(matches!(
        check_resolution(
            ExceptionStatus::Resolved,
            Some(R::RemoveLine),
            None,
            R::CancelOrder,
            None
        ),
        ResolutionCheck::Refuse(_)
    ));
    assert!(matches!(
        check_resolution(
            ExceptionStatus::Superseded,
            None,
            None,
            R::RemoveLine,
            None
        ),
        ResolutionCheck::Refuse(r) if r.contains("superseded")
    ));
}

#[test]
fn exception_reconciliation_keeps_identical_ones() {
    let line = gtin_line();
    let keep = Uuid::now_v7();
    let stale = Uuid::now_v7();
    let open = [
        OpenException {
            exception_id: keep,
            line_id: "1".into(),
            problem: ItemProblem::UnknownGtin,
            sku: None,
            gtin: line.gtin.clone(),
        },
        OpenException {
            exception_id: stale,
            line_id: "9".into(),
            problem: ItemProblem::UnknownGtin,
            sku: None,
            gtin: None,
        },
    ];
    let mut other = line.clone();
    other.line_id = "2".into();
    let r = reconcile_exceptions(
        &open,
        &[
            (line, ItemProblem::UnknownGtin, None),
            (other, ItemProblem::UnknownGtin, None),
        ],
    );
    assert_eq!(r.supersede, vec![stale]);
    assert_eq!(r.raise, vec![1]);
}

#[test]
fn customer_keys() {
    let mut c = two_line_order().customer;
    let id = Uuid::now_v7();
    assert_eq!(customer_key(&c, id), "joerg@example.de");
    c.id = Some("C-1".into());
    assert_eq!(customer_key(&c, id), "C-1");
    c.id = None;
    c.email = None;
    assert_eq!(customer_key(&c, id), format!("guest:{id}"));
}
