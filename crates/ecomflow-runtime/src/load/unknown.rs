//! An unknown plugin type: the closest names, or the kind it belongs to.

use super::*;

pub(super) fn unknown_plugin(kind: Kind, name: &str, base: Diagnostic) -> Diagnostic {
    let other_kind = [Kind::Source, Kind::Transform, Kind::Sink]
        .into_iter()
        .find(|k| *k != kind && Plugin::find(*k, name).is_some());
    let mut d = base;
    if let Some(other) = other_kind {
        d.message = format!(
            "`{name}` is a {} plugin, not a {}",
            other.noun(),
            kind.noun()
        );
        d.hint = Some(format!(
            "declare it under [{}.<id>], or use one of the {} plugins: {}",
            other.table(),
            kind.noun(),
            names_of(kind)
        ));
        return d;
    }
    d.message = format!("unknown {} type `{name}`", kind.noun());
    let known: Vec<&str> = Plugin::all()
        .into_iter()
        .filter(|p| p.kind() == kind)
        .map(|p| p.name)
        .collect();
    d.hint = Some(did_you_mean(
        name,
        &known,
        &format!("the {} plugins are", kind.noun()),
    ));
    d
}

pub(super) fn did_you_mean(name: &str, known: &[&str], listing: &str) -> String {
    let close = closest(name, known.iter().copied());
    let all = known.join(", ");
    match close.first() {
        Some(best) => format!("did you mean `{best}`? ({listing}: {all})"),
        None => format!("{listing}: {all}"),
    }
}

pub(super) fn names_of(kind: Kind) -> String {
    Plugin::all()
        .into_iter()
        .filter(|p| p.kind() == kind)
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}
