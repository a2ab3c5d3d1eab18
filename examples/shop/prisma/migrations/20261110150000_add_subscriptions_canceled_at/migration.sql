-- AlterTable
ALTER TABLE "subscriptions" ADD COLUMN "canceled_at" DATETIME;

-- AlterTable
ALTER TABLE "users" ADD COLUMN "deleted_at" DATETIME;
