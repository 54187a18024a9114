//! The part every design shares: a [`Layout`] turned into states. Steps become whatever the
//! design builds for one step ([`StepStates`]); independent parts become `Parallel` states whose
//! branches merge their results back into one flat `$.steps` object, so every step's result is at
//! `$.steps.<step>` whatever the layout.

use std::collections::{BTreeMap, BTreeSet};

use crate::definition::{check_state_name, Definition, DefinitionError};
use crate::json::Json;
use crate::layout::Layout;
use crate::obj;

/// The states of one `States` object (the top level or one branch), in insertion order.
#[derive(Debug, Default)]
pub struct Scope {
    pub states: Vec<(String, Json)>,
}

impl Scope {
    pub fn add(&mut self, name: impl Into<String>, state: Json) {
        self.states.push((name.into(), state));
    }

    pub fn into_json(self) -> Json {
        Json::Obj(self.states)
    }
}

/// Where a state goes next: another state, or the end of its branch.
pub fn next_or_end(next: Option<&str>) -> [(String, Json); 1] {
    match next {
        Some(n) => [("Next".to_owned(), Json::str(n))],
        None => [("End".to_owned(), Json::Bool(true))],
    }
}

/// Appends `Next`/`End` to a state object.
pub fn then(mut state: Json, next: Option<&str>) -> Json {
    if let Json::Obj(fields) = &mut state {
        fields.extend(next_or_end(next));
    }
    state
}

/// What a design builds for one SQL step.
pub trait StepStates {
    /// Adds the states of step `index` to `scope`, ending with a transition to `next` (or the end
    /// of the branch); returns the name of the step's first state (the step's name).
    fn step(&self, def: &Definition, index: usize, scope: &mut Scope, next: Option<&str>);
}

/// The names of the layout's Parallel states: the definition's `[[parallel]]` names where they
/// match a Parallel's steps exactly, a name made from the branches' first steps otherwise.
#[derive(Debug, Clone)]
pub struct ParallelNames {
    names: BTreeMap<BTreeSet<usize>, (String, Option<String>)>,
}

impl ParallelNames {
    pub fn new(def: &Definition, layout: &Layout) -> Result<Self, DefinitionError> {
        let file = def.file.display().to_string();
        let mut groups = Vec::new();
        collect_parallels(layout, &mut groups);
        let mut names = BTreeMap::new();
        let mut taken: BTreeSet<String> = def.steps.iter().map(|s| s.name.clone()).collect();
        for p in &def.parallels {
            if !groups.iter().any(|(set, _)| *set == p.steps) {
                let found: Vec<String> = groups
                    .iter()
                    .map(|(set, _)| {
                        let names: Vec<&str> =
                            set.iter().map(|&i| def.steps[i].name.as_str()).collect();
                        format!("[{}]", names.join(", "))
                    })
                    .collect();
                return Err(DefinitionError::Invalid {
                    file,
                    reason: format!(
                        "parallel {} does not match a Parallel state of the layout; its steps must be exactly those of one of: {}",
                        p.name,
                        if found.is_empty() { "(there is none)".to_owned() } else { found.join(" ") }
                    ),
                });
            }
            taken.insert(p.name.clone());
            names.insert(p.steps.clone(), (p.name.clone(), p.description.clone()));
        }
        for (set, firsts) in groups {
            if names.contains_key(&set) {
                continue;
            }
            let heads: Vec<&str> = firsts.iter().map(|&i| def.steps[i].name.as_str()).collect();
            let mut name = format!("Parallel_{}", heads.join("_"));
            if name.chars().count() > 80 {
                name = format!("Parallel_{}_and_{}_more", heads[0], heads.len() - 1);
            }
            let mut unique = name.clone();
            let mut k = 2;
            while taken.contains(&unique) || check_state_name(&unique).is_err() {
                unique = format!("Parallel{k}_{}", heads[0]);
                unique.truncate(80);
                k += 1;
            }
            taken.insert(unique.clone());
            names.insert(set, (unique, None));
        }
        Ok(Self { names })
    }

    fn of(&self, set: &BTreeSet<usize>) -> &(String, Option<String>) {
        &self.names[set]
    }
}

fn collect_parallels(layout: &Layout, out: &mut Vec<(BTreeSet<usize>, Vec<usize>)>) {
    match layout {
        Layout::Step(_) => {}
        Layout::Series(items) => items.iter().for_each(|i| collect_parallels(i, out)),
        Layout::Parallel(branches) => {
            let set = layout.steps().into_iter().collect();
            let firsts = branches.iter().map(|b| b.steps()[0]).collect();
            out.push((set, firsts));
            branches.iter().for_each(|b| collect_parallels(b, out));
        }
    }
}

/// Adds the states of `layout` to `scope`, ending at `next`; `done` are the steps finished before
/// it starts. Returns the name of the first state.
pub fn emit(
    def: &Definition,
    design: &dyn StepStates,
    names: &ParallelNames,
    layout: &Layout,
    scope: &mut Scope,
    next: Option<&str>,
    done: &BTreeSet<usize>,
) -> String {
    match layout {
        Layout::Step(i) => {
            design.step(def, *i, scope, next);
            def.steps[*i].name.clone()
        }
        Layout::Series(items) => {
            // Emit in order (readable output), so each item needs the name of the next one first.
            let firsts: Vec<String> = items.iter().map(|l| first_state(def, names, l)).collect();
            let mut finished = done.clone();
            for (k, item) in items.iter().enumerate() {
                let after = firsts.get(k + 1).map(String::as_str).or(next);
                emit(def, design, names, item, scope, after, &finished);
                finished.extend(item.steps());
            }
            firsts[0].clone()
        }
        Layout::Parallel(branches) => {
            let set: BTreeSet<usize> = layout.steps().into_iter().collect();
            let (name, description) = names.of(&set).clone();
            let mut built = Vec::new();
            for b in branches {
                let mut inner = Scope::default();
                let start = emit(def, design, names, b, &mut inner, None, done);
                built.push(obj! { "StartAt" => start, "States" => inner.into_json() });
            }
            // Every branch starts with the steps finished before; each adds its own.
            let mut merge = Vec::new();
            for (i, step) in def.steps.iter().enumerate() {
                if done.contains(&i) {
                    merge.push((
                        format!("{}.$", step.name),
                        Json::str(format!("$[0].steps.{}", step.name)),
                    ));
                }
            }
            for (k, b) in branches.iter().enumerate() {
                for i in b.steps() {
                    let s = &def.steps[i].name;
                    merge.push((format!("{s}.$"), Json::str(format!("$[{k}].steps.{s}"))));
                }
            }
            let heads: Vec<&str> = branches
                .iter()
                .map(|b| def.steps[b.steps()[0]].name.as_str())
                .collect();
            let comment = description.unwrap_or_else(|| {
                format!(
                    "Runs {} concurrently (independent steps); continues when every branch succeeded.",
                    heads.join(", ")
                )
            });
            let state = obj! {
                "Type" => "Parallel",
                "Comment" => comment,
                "Branches" => Json::Arr(built),
                "ResultSelector" => Json::Obj(merge),
                "ResultPath" => "$.steps",
            };
            scope.add(name.clone(), then(state, next));
            name
        }
    }
}

fn first_state(def: &Definition, names: &ParallelNames, layout: &Layout) -> String {
    match layout {
        Layout::Step(i) => def.steps[*i].name.clone(),
        Layout::Series(items) => first_state(def, names, &items[0]),
        Layout::Parallel(_) => names.of(&layout.steps().into_iter().collect()).0.clone(),
    }
}
