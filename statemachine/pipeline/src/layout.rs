//! From the dependency graph to nested `Parallel` states.
//!
//! A graph is laid out by two rules, applied again to every part:
//! - **Parallel**: steps that do not depend on each other in any way (separate weakly connected
//!   components) run as the branches of one `Parallel` state.
//! - **Series**: a connected set is cut into a first part `P` and the rest `Q` when every step of
//!   `Q` depends (directly or not) on every step of `P`; `P` runs, then `Q`.
//!
//! For a series-parallel graph this is exact: every step starts as soon as everything it depends
//! on has succeeded, and waits for nothing else. A graph that is not series-parallel (A->C, A->D,
//! B->D) has a connected part without such a cut; there the steps whose dependencies lie outside
//! the part (its sources) run first, together, and the rest is laid out again. That is still
//! correct (nothing starts before its dependencies succeeded), but a step may also wait for a
//! source it does not depend on: C waits for B. [`Layout::extra_waits`] reports those.

use std::collections::BTreeSet;

use crate::definition::Definition;

/// The shape of the state machine's SQL part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One SQL step (index into the definition's steps).
    Step(usize),
    /// One after the other (at least two items, none of them a Series).
    Series(Vec<Layout>),
    /// Branches of one Parallel state (at least two, each a Step or a Series).
    Parallel(Vec<Layout>),
}

/// Every step's ancestors (what it depends on, directly or not).
pub fn ancestors(def: &Definition) -> Vec<BTreeSet<usize>> {
    let n = def.steps.len();
    let mut anc: Vec<Option<BTreeSet<usize>>> = vec![None; n];
    fn fill(i: usize, def: &Definition, anc: &mut Vec<Option<BTreeSet<usize>>>) {
        if anc[i].is_some() {
            return;
        }
        let mut set = BTreeSet::new();
        for &j in &def.steps[i].after {
            fill(j, def, anc);
            set.insert(j);
            set.extend(anc[j].as_ref().expect("filled").iter().copied());
        }
        anc[i] = Some(set);
    }
    for i in 0..n {
        fill(i, def, &mut anc);
    }
    anc.into_iter().map(|a| a.expect("filled")).collect()
}

impl Layout {
    /// The layout of a checked (acyclic) definition.
    pub fn of(def: &Definition) -> Layout {
        let anc = ancestors(def);
        let all: BTreeSet<usize> = (0..def.steps.len()).collect();
        lay(def, &anc, &all)
    }

    /// The steps in this part, in layout order.
    pub fn steps(&self) -> Vec<usize> {
        match self {
            Layout::Step(i) => vec![*i],
            Layout::Series(items) | Layout::Parallel(items) => {
                items.iter().flat_map(Layout::steps).collect()
            }
        }
    }

    /// For every step, the steps that have finished when it starts under this layout.
    pub fn waits_for(&self, n: usize) -> Vec<BTreeSet<usize>> {
        let mut waits = vec![BTreeSet::new(); n];
        fn walk(l: &Layout, before: &BTreeSet<usize>, waits: &mut [BTreeSet<usize>]) {
            match l {
                Layout::Step(i) => waits[*i] = before.clone(),
                Layout::Series(items) => {
                    let mut done = before.clone();
                    for item in items {
                        walk(item, &done, waits);
                        done.extend(item.steps());
                    }
                }
                Layout::Parallel(branches) => {
                    for b in branches {
                        walk(b, before, waits);
                    }
                }
            }
        }
        walk(self, &BTreeSet::new(), &mut waits);
        waits
    }

    /// Per step, what it waits for under this layout although it does not depend on it: empty
    /// for every step exactly when the layout is exact (the graph is series-parallel).
    pub fn extra_waits(&self, def: &Definition) -> Vec<BTreeSet<usize>> {
        let anc = ancestors(def);
        self.waits_for(def.steps.len())
            .into_iter()
            .zip(anc)
            .map(|(w, a)| w.difference(&a).copied().collect())
            .collect()
    }

    /// The number of steps on the longest chain of this layout (how many SQL steps run one after
    /// the other at least).
    pub fn depth(&self) -> usize {
        match self {
            Layout::Step(_) => 1,
            Layout::Series(items) => items.iter().map(Layout::depth).sum(),
            Layout::Parallel(branches) => branches.iter().map(Layout::depth).max().unwrap_or(0),
        }
    }

    /// How many Parallel states the layout has.
    pub fn parallels(&self) -> usize {
        match self {
            Layout::Step(_) => 0,
            Layout::Series(items) => items.iter().map(Layout::parallels).sum(),
            Layout::Parallel(branches) => 1 + branches.iter().map(Layout::parallels).sum::<usize>(),
        }
    }
}

/// The longest dependency chain of the graph, in steps.
pub fn critical_path(def: &Definition) -> usize {
    let mut depth = vec![0usize; def.steps.len()];
    let anc = ancestors(def);
    let mut order: Vec<usize> = (0..def.steps.len()).collect();
    order.sort_by_key(|&i| anc[i].len());
    for i in order {
        depth[i] = 1 + def.steps[i]
            .after
            .iter()
            .map(|&j| depth[j])
            .max()
            .unwrap_or(0);
    }
    depth.into_iter().max().unwrap_or(0)
}

fn lay(def: &Definition, anc: &[BTreeSet<usize>], set: &BTreeSet<usize>) -> Layout {
    if set.len() == 1 {
        return Layout::Step(*set.iter().next().expect("one step"));
    }
    let components = components(def, set);
    if components.len() > 1 {
        return Layout::Parallel(components.iter().map(|c| lay(def, anc, c)).collect());
    }
    let first = series_cut(anc, set).unwrap_or_else(|| sources(anc, set));
    let rest: BTreeSet<usize> = set.difference(&first).copied().collect();
    let mut items = Vec::new();
    for part in [lay(def, anc, &first), lay(def, anc, &rest)] {
        match part {
            Layout::Series(inner) => items.extend(inner),
            other => items.push(other),
        }
    }
    Layout::Series(items)
}

/// The weakly connected components of `set` (edges inside `set` only), ordered by their first
/// step in the definition.
fn components(def: &Definition, set: &BTreeSet<usize>) -> Vec<BTreeSet<usize>> {
    let mut parent: Vec<usize> = (0..def.steps.len()).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for &i in set {
        for &j in &def.steps[i].after {
            if set.contains(&j) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: Vec<(usize, BTreeSet<usize>)> = Vec::new();
    for &i in set {
        let r = root(&mut parent, i);
        match groups.iter_mut().find(|(g, _)| *g == r) {
            Some((_, members)) => {
                members.insert(i);
            }
            None => groups.push((r, BTreeSet::from([i]))),
        }
    }
    groups.sort_by_key(|(_, m)| *m.iter().next().expect("non-empty"));
    groups.into_iter().map(|(_, m)| m).collect()
}

/// The steps of `set` that depend on nothing inside it.
fn sources(anc: &[BTreeSet<usize>], set: &BTreeSet<usize>) -> BTreeSet<usize> {
    set.iter()
        .copied()
        .filter(|&i| anc[i].is_disjoint(set))
        .collect()
}

/// The smallest first part `P` of a connected `set` such that every other step depends on every
/// step of `P`; `None` when there is none (the set is not a series composition).
fn series_cut(anc: &[BTreeSet<usize>], set: &BTreeSet<usize>) -> Option<BTreeSet<usize>> {
    let mut first = sources(anc, set);
    loop {
        let misfit = set
            .iter()
            .copied()
            .find(|&q| !first.contains(&q) && !first.is_subset(&anc[q]));
        match misfit {
            Some(q) => {
                first.insert(q);
                first.extend(anc[q].intersection(set).copied());
            }
            None if first.len() < set.len() => return Some(first),
            None => return None,
        }
    }
}
