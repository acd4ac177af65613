/**
 * Resource options for the children of a component that was put between them and their old parent. A child's
 * URN includes its parent's type, so moving it under a new component would make Pulumi delete and recreate it
 * (a new function, role, route …) on the next `pulumi up`. An alias naming the old parent tells Pulumi the
 * resource at the old URN is this one; with the name kept, state carries over and nothing is replaced.
 */
import type * as pulumi from "@pulumi/pulumi";

/**
 * Options for a child of `component` that used to be created directly under the component's own parent
 * (`componentOptions.parent`, the `ChatApi`).
 */
export function movedChildOptions(
  component: pulumi.ComponentResource,
  componentOptions: pulumi.ComponentResourceOptions | undefined,
): pulumi.CustomResourceOptions {
  const formerParent = componentOptions?.parent;
  return { parent: component, ...(formerParent ? { aliases: [{ parent: formerParent }] } : {}) };
}
